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
	// No redirects: Go would carry X-Api-Key to wherever one points, and the
	// API proxy does not follow them either.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
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
	// The upstream's words are quoted: never with the secret in them, never
	// with a terminal's control sequences (R10).
	text := string(msg)
	for _, secret := range []string{apiKey, oauthToken} {
		if secret != "" {
			text = strings.ReplaceAll(text, secret, "(the credential)")
		}
	}
	why := sanitize.FirstLine(sanitize.Terminal(text), 200)
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w (%d: %s)", ErrCredentialRefused, resp.StatusCode, why)
	default:
		return fmt.Errorf("%s answered %d (%s): the credential could not be checked", upstream.Redacted(), resp.StatusCode, why)
	}
}
