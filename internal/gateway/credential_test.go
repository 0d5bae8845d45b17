package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
)

func TestCheckCredential(t *testing.T) {
	fake := fakeapi.New()
	defer fake.Close()
	fake.RequireCredential("sk-ant-good")
	up, _ := url.Parse(fake.URL())
	ctx := context.Background()
	if err := CheckCredential(ctx, up, "sk-ant-good", ""); err != nil {
		t.Errorf("good API key: %v", err)
	}
	if err := CheckCredential(ctx, up, "", "sk-ant-good"); err != nil {
		t.Errorf("good OAuth token: %v", err)
	}
	err := CheckCredential(ctx, up, "sk-ant-bad", "")
	if !errors.Is(err, ErrCredentialRefused) || !strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "sk-ant-bad") {
		t.Errorf("bad key: %v", err)
	}
	if err := CheckCredential(ctx, up, "", ""); !errors.Is(err, ErrCredentialRefused) {
		t.Errorf("no credential: %v", err)
	}
	reqs := fake.Requests()
	if r := reqs[1]; r.Path != "/v1/messages/count_tokens" || !strings.Contains(r.Header.Get("Anthropic-Beta"), oauthBeta) {
		t.Errorf("the OAuth check was %s %s with beta %q", r.Method, r.Path, r.Header.Get("Anthropic-Beta"))
	}
	// A redirect is no verdict, and the key does not follow it; the
	// upstream's words come back without the key or control sequences.
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = append(leaked, r.Header.Get("X-Api-Key"))
	}))
	defer other.Close()
	odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") == "sk-ant-redirect" {
			http.Redirect(w, r, other.URL+"/v1/messages/count_tokens", http.StatusTemporaryRedirect)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":{"message":"bad key \u001b]0;pwned\u0007` + r.Header.Get("X-Api-Key") + `"}}`))
	}))
	defer odd.Close()
	oddURL, _ := url.Parse(odd.URL)
	if err := CheckCredential(ctx, oddURL, "sk-ant-redirect", ""); err == nil || errors.Is(err, ErrCredentialRefused) || len(leaked) != 0 {
		t.Errorf("redirect: %v; the other host saw %q", err, leaked)
	}
	err = CheckCredential(ctx, oddURL, "sk-ant-echoed", "")
	if !errors.Is(err, ErrCredentialRefused) || strings.Contains(err.Error(), "sk-ant-echoed") || strings.Contains(err.Error(), "\x1b") {
		t.Errorf("echoing upstream: %q", err)
	}
	fake.Close()
	if err := CheckCredential(ctx, up, "sk-ant-good", ""); err == nil || errors.Is(err, ErrCredentialRefused) || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("upstream down: %v", err)
	}
}
