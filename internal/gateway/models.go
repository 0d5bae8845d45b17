package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// ErrModelsUnreachable is wrapped by ListModels' error when the upstream
// gave no list: not reached, or an answer that is not one. A caller may
// then fall back to a check of the name's form, saying so.
var ErrModelsUnreachable = errors.New("the upstream's model list could not be read")

// ListModels returns the ids of the models the upstream offers to this
// credential (GET /v1/models, every page), sent as CheckCredential sends:
// the credential as the API proxy sets it, no redirect followed, the
// upstream's words quoted without the secret.
func ListModels(ctx context.Context, upstream *url.URL, apiKey, oauthToken string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var ids []string
	after := ""
	// A handful of pages of 1000 is far more models than there are; the
	// bound keeps a confused upstream from holding the CLI forever.
	for range 10 {
		u := upstream.JoinPath("v1/models")
		q := url.Values{"limit": {"1000"}}
		if after != "" {
			q.Set("after_id", after)
		}
		u.RawQuery = q.Encode()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Anthropic-Version", "2023-06-01")
		setCredential(req.Header, apiKey, oauthToken)
		resp, err := noRedirects.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%w: cannot reach %s: %w", ErrModelsUnreachable, upstream.Redacted(), errors.Unwrap(err))
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrModelsUnreachable, err)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%w: %s answered %d (%s)", ErrModelsUnreachable, upstream.Redacted(), resp.StatusCode,
				upstreamWords(body, apiKey, oauthToken))
		}
		var page struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			HasMore bool   `json:"has_more"`
			LastID  string `json:"last_id"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, fmt.Errorf("%w: %s's answer is not a model list: %w", ErrModelsUnreachable, upstream.Redacted(), err)
		}
		for _, m := range page.Data {
			ids = append(ids, m.ID)
		}
		if !page.HasMore || page.LastID == "" || page.LastID == after {
			return ids, nil
		}
		after = page.LastID
	}
	return ids, nil
}
