package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// ErrCredentialRefused is wrapped by CheckCredential's error when the
// upstream refused the credential itself (401 or 403).
var ErrCredentialRefused = errors.New("the upstream refused the credential")

// CheckCredential asks the upstream whether it accepts the credential,
// with the cheapest authenticated call there is (counting the tokens of
// "hi", which costs nothing), sent with the credential exactly as the API
// proxy sends it. nil means accepted; an error wrapping
// ErrCredentialRefused means refused; any other error means the upstream
// could not say (unreachable, or an answer that is no verdict).
// noRedirects carries the host's own calls to the upstream: Go would carry
// X-Api-Key to wherever a redirect points, and the API proxy does not
// follow them either.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// upstreamWords is what the upstream said, as one line to quote: never
// with the secret in it, never with a terminal's control sequences (R10).
func upstreamWords(b []byte, apiKey, oauthToken string) string {
	text := string(b)
	for _, secret := range []string{apiKey, oauthToken} {
		if secret != "" {
			text = strings.ReplaceAll(text, secret, "(the credential)")
		}
	}
	return sanitize.FirstLine(sanitize.Terminal(text), 200)
}

func CheckCredential(ctx context.Context, upstream *url.URL, apiKey, oauthToken string) error {
	if apiKey == "" && oauthToken == "" {
		return fmt.Errorf("%w: no credential is set", ErrCredentialRefused)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"model": "claude-haiku-4-5",
		"messages": []map[string]string{{"role": "user", "content": "hi"}}})
	u := upstream.JoinPath("v1/messages/count_tokens")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	setCredential(req.Header, apiKey, oauthToken)
	resp, err := noRedirects.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", upstream.Redacted(), errors.Unwrap(err))
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	if json.Unmarshal(msg, &e) == nil && e.Error.Message != "" {
		msg = []byte(e.Error.Message)
	}
	why := upstreamWords(msg, apiKey, oauthToken)
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w (%d: %s)", ErrCredentialRefused, resp.StatusCode, why)
	default:
		return fmt.Errorf("%s answered %d (%s): the credential could not be checked", upstream.Redacted(), resp.StatusCode, why)
	}
}
