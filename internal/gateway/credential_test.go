package gateway

import (
	"context"
	"errors"
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
	fake.Close()
	if err := CheckCredential(ctx, up, "sk-ant-good", ""); err == nil || errors.Is(err, ErrCredentialRefused) || !strings.Contains(err.Error(), "cannot reach") {
		t.Errorf("upstream down: %v", err)
	}
}
