package whatsapp

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParsePhone(t *testing.T) {
	good := map[string]string{
		"+14155550123":      "14155550123",
		"14155550123":       "14155550123",
		"+49 151 1234-5678": "4915112345678",
		"+1 (415) 555.0123": "14155550123",
		" +4915112345678 ":  "4915112345678",
	}
	for in, want := range good {
		if got, err := ParsePhone(in); err != nil || got != want {
			t.Errorf("ParsePhone(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                   "no digits",
		"+":                  "no digits",
		"12ab":               "unexpected 'a'",
		"0151 1234567":       "starts with 0",
		"+123456":            "6 digits",
		"+1234567890123456":  "16 digits",
		"1+4155550123":       "unexpected '+'",
		"+1-415-555-0123;rm": "unexpected ';'",
	}
	for in, want := range bad {
		_, err := ParsePhone(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePhone(%q) = %v, want error containing %q", in, err, want)
		}
	}
}

func TestPairRefusesWhenAlreadyPaired(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "nanoclaw.db"), nil)
	pairDevice(t, st)
	hc, dials := deadEnd(t)
	_, err := Pair(context.Background(), st.DB(), PairOptions{Logger: quiet, HTTPClient: hc, QR: func(string, time.Duration) {}})
	var already *AlreadyPairedError
	if !errors.As(err, &already) || already.Account.JID != ownPN.String() || already.Account.Phone() != "+15550001111" {
		t.Fatalf("Pair = %v, want *AlreadyPairedError for %s", err, ownPN)
	}
	if dials.Load() != 0 {
		t.Error("Pair went to the network although the account is paired")
	}
}

// Without network, Pair fails with ErrUnreachable within its connect timeout,
// and a failed replacement leaves the old session in place.
func TestPairUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		net     func(*testing.T) (*http.Client, *atomic.Int32)
		phone   string
		replace bool
	}{
		{"refused, QR", deadEnd, "", false},
		{"blackhole, phone code", blackhole, "+14155550123", false},
		{"blackhole, replacing a session", blackhole, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, filepath.Join(t.TempDir(), "nanoclaw.db"), nil)
			if tc.replace {
				pairDevice(t, st)
			}
			hc, dials := tc.net(t)
			var shown []string
			start := time.Now()
			_, err := Pair(context.Background(), st.DB(), PairOptions{
				Phone: tc.phone, Replace: tc.replace, ConnectTimeout: 1500 * time.Millisecond,
				Logger: quiet, HTTPClient: hc,
				Progress:    func(msg string) { shown = append(shown, msg) },
				QR:          func(code string, _ time.Duration) { shown = append(shown, "QR "+code) },
				PairingCode: func(code string) { shown = append(shown, "CODE "+code) },
			})
			took := time.Since(start)
			if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "cannot reach WhatsApp") {
				t.Fatalf("Pair = %v, want ErrUnreachable", err)
			}
			if took > 5*time.Second {
				t.Errorf("Pair took %s with a 1.5s connect timeout", took)
			}
			if dials.Load() == 0 {
				t.Error("Pair never dialled: the test network was not used")
			}
			if len(shown) != 1 || !strings.Contains(shown[0], "Connecting") {
				t.Errorf("shown %q, want only the connecting step", shown)
			}
			_, dev, err := openDevice(context.Background(), st.DB(), quiet)
			if err != nil {
				t.Fatal(err)
			}
			if tc.replace && (dev.ID == nil || dev.ID.User != ownPN.User) {
				t.Errorf("failed replacement lost the old session: device %v", dev.ID)
			}
			if !tc.replace && dev.ID != nil {
				t.Errorf("failed pairing left a device %v", dev.ID)
			}
		})
	}
}

func TestPairNeedsItsCallbacks(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "nanoclaw.db"), nil)
	for _, tc := range []struct {
		name string
		opts PairOptions
	}{
		{"by QR without a QR callback", PairOptions{}},
		{"by phone without a code callback", PairOptions{Phone: "+14155550123"}},
		{"a bad phone number", PairOptions{Phone: "12ab", PairingCode: func(string) {}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Logger = quiet
			if _, err := Pair(context.Background(), st.DB(), tc.opts); err == nil {
				t.Error("Pair accepted it")
			}
		})
	}
}
