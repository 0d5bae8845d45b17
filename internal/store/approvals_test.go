package store

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/egress"
)

// An ask is recorded open under a fresh code, answered once, and an
// "always" adds its destination to the group's approved rules in the same
// transaction.
func TestApprovals(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	g := testGroup("family")
	g.Config.Egress = Egress{Mode: EgressAsk}
	mustPutGroup(t, s, g)

	a, err := s.AddApproval(ctx, "family", "api.example.com", 443)
	if err != nil {
		t.Fatal(err)
	}
	if ValidateAskCode(a.Code) != nil || a.Decision != "" || a.DecidedAt != nil || a.Target() != "api.example.com:443" {
		t.Fatalf("new ask %+v", a)
	}
	got, found, err := s.ApprovalByCode(ctx, a.Code)
	if err != nil || !found || got.Code != a.Code || got.Host != a.Host || !got.AskedAt.Equal(a.AskedAt) || got.Decision != "" {
		t.Fatalf("by code: %+v %v %v", got, found, err)
	}

	d, err := s.DecideApproval(ctx, a.Code, egress.VerdictAlways, "owner@s.whatsapp.net msg 1")
	if err != nil || d.Decision != egress.VerdictAlways || d.DecidedAt == nil || d.DecidedBy != "owner@s.whatsapp.net msg 1" {
		t.Fatalf("decide: %+v, %v", d, err)
	}
	g2, _, err := s.GetGroup(ctx, "family")
	if err != nil || !slices.Equal(g2.Config.ApprovedAllow, []string{"api.example.com:443"}) || !g2.Config.Approved("api.example.com", 443) {
		t.Fatalf("approved rules after always: %v, %v", g2.Config.ApprovedAllow, err)
	}
	if g2.Config.Approved("api.example.com", 80) || g2.Config.Approved("example.com", 443) {
		t.Fatal("approval covers another destination")
	}

	// A second answer changes nothing.
	again, err := s.DecideApproval(ctx, a.Code, egress.VerdictDeny, "someone")
	if !errors.Is(err, ErrDecided) || again.Decision != egress.VerdictAlways {
		t.Fatalf("second answer: %+v, %v", again, err)
	}
	if _, err := s.DecideApproval(ctx, "ZZZZZZ", egress.VerdictAllow, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}

	// A deny adds nothing; an open ask is closed as a timeout at start.
	b, _ := s.AddApproval(ctx, "family", "2606:4700::1", 8443)
	if _, err := s.DecideApproval(ctx, b.Code, egress.VerdictDeny, "o"); err != nil {
		t.Fatal(err)
	}
	c, _ := s.AddApproval(ctx, "family", "c.example", 443)
	if err := s.CloseOpenApprovals(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := s.RecentApprovals(ctx, 10)
	if err != nil || len(list) != 3 {
		t.Fatalf("recent: %v %v", list, err)
	}
	byCode := map[string]Approval{}
	for _, x := range list {
		byCode[x.Code] = x
	}
	if byCode[c.Code].Decision != egress.VerdictTimeout || byCode[b.Code].Decision != egress.VerdictDeny || byCode[b.Code].Target() != "[2606:4700::1]:8443" {
		t.Fatalf("recent: %+v", list)
	}
	g3, _, _ := s.GetGroup(ctx, "family")
	if len(g3.Config.ApprovedAllow) != 1 {
		t.Fatalf("approved after deny: %v", g3.Config.ApprovedAllow)
	}
}

// Two answers racing: exactly one is taken.
func TestApprovalDecidedOnce(t *testing.T) {
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	a, err := s.AddApproval(t.Context(), "family", "a.example", 443)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := 0
	for _, v := range []egress.Verdict{egress.VerdictAllow, egress.VerdictDeny, egress.VerdictTimeout, egress.VerdictAlways} {
		wg.Go(func() {
			if _, err := s.DecideApproval(t.Context(), a.Code, v, "x"); err == nil {
				mu.Lock()
				taken++
				mu.Unlock()
			} else if !errors.Is(err, ErrDecided) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if taken != 1 {
		t.Fatalf("%d answers taken", taken)
	}
}

func TestApprovalValidation(t *testing.T) {
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	for _, tc := range []struct {
		host string
		port int
	}{{"Upper.Example", 443}, {"a.example", 0}, {"", 443}, {"[::1]", 80}} {
		if _, err := s.AddApproval(t.Context(), "family", tc.host, tc.port); err == nil {
			t.Errorf("AddApproval(%q, %d) passed", tc.host, tc.port)
		}
	}
	for _, list := range [][]string{{"a.example"}, {"*.example.org:443"}, {"10.0.0.0/8:443"}, {"a.example:*"}, {"A.example:443"}, {"a.example:443", "a.example:443"}} {
		c := ContainerConfig{ApprovedAllow: list}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "approved_allow") {
			t.Errorf("approved_allow %q: %v", list, err)
		}
	}
	if err := (ContainerConfig{ApprovedAllow: []string{"a.example:443", "1.1.1.1:853", "[2606:4700::1]:443"}}).Validate(); err != nil {
		t.Error(err)
	}
	wantRefused(t, s, `INSERT INTO egress_approvals (code, folder, host, port, asked_at) VALUES ('abcdef', 'family', 'a.example', 443, 1)`)
	wantRefused(t, s, `INSERT INTO egress_approvals (code, folder, host, port, asked_at, decision) VALUES ('ABCDEF', 'family', 'a.example', 443, 1, 'allow')`)
}
