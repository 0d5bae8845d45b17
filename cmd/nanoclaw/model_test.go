package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// groups set model= is checked against the upstream's list when it can be
// read, and by form (claude-...) when it cannot, saying so.
func TestGroupsSetModel(t *testing.T) {
	_, env, open := ownerWorld(t)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/models" || r.Header.Get("X-Api-Key") != "sk-ant-test" {
			http.Error(w, `{"error":{"message":"no"}}`, http.StatusUnauthorized)
			return
		}
		w.Write([]byte(`{"data":[{"id":"claude-opus-4-1"},{"id":"claude-sonnet-4-5"}],"has_more":false}`))
	}))
	defer upstream.Close()
	env["ANTHROPIC_BASE_URL"] = upstream.URL
	env["ANTHROPIC_API_KEY"] = "sk-ant-test"
	model := func() string {
		st := open()
		defer st.Close()
		g, _, err := st.GetGroup(context.Background(), "family")
		if err != nil {
			t.Fatal(err)
		}
		return g.Config.Model
	}

	if code, out, errOut := run(t, env, "groups", "set", "family", "model=claude-opus-4-1"); code != cli.ExitOK || !strings.Contains(out, "model:     claude-opus-4-1") {
		t.Fatalf("known model: exit %d, %q, %q", code, out, errOut)
	}
	code, _, errOut := run(t, env, "groups", "set", "family", "model=claude-opus-9")
	if code == cli.ExitOK || !strings.Contains(errOut, `model "claude-opus-9": unknown to`) || !strings.Contains(errOut, "claude-sonnet-4-5") {
		t.Errorf("unknown model: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := run(t, env, "groups", "set", "family", "model=--help"); code == cli.ExitOK || !strings.Contains(errOut, "not allowed") {
		t.Errorf("a flag as model: exit %d, stderr %q", code, errOut)
	}
	if got := model(); got != "claude-opus-4-1" {
		t.Errorf("model after the refusals = %q", got)
	}

	// Unreachable: a Claude-looking name passes, told unchecked; another does not.
	upstream.Close()
	code, _, errOut = run(t, env, "groups", "set", "family", "model=claude-sonnet-4-5")
	if code != cli.ExitOK || !strings.Contains(errOut, "not checked") || model() != "claude-sonnet-4-5" {
		t.Errorf("unreachable, claude-sonnet-4-5: exit %d, stderr %q, model %q", code, errOut, model())
	}
	if code, _, errOut := run(t, env, "groups", "set", "family", "model=gpt-5"); code == cli.ExitOK || !strings.Contains(errOut, "does not look like") {
		t.Errorf("unreachable, gpt-5: exit %d, stderr %q", code, errOut)
	}
	if code, out, _ := run(t, env, "groups", "set", "family", "model=default"); code != cli.ExitOK || !strings.Contains(out, "model:     default") || model() != "" {
		t.Errorf("model=default: exit %d, %q, model %q", code, out, model())
	}
}

func TestGroupsSetBudget(t *testing.T) {
	_, env, open := ownerWorld(t)
	code, out, errOut := run(t, env, "groups", "set", "family", "day_tokens=5000", "month_usd=20")
	if code != cli.ExitOK || !strings.Contains(out, "budget:    5000 tokens a day, $20.00 a month") {
		t.Fatalf("exit %d, %q, %q", code, out, errOut)
	}
	for _, bad := range []string{"day_tokens=-1", "day_tokens=lots", "day_usd=NaN", "month_usd=-3", "day_usd=Inf"} {
		if code, _, errOut := run(t, env, "groups", "set", "family", bad); code == cli.ExitOK || !strings.Contains(errOut, strings.Split(bad, "=")[0]) {
			t.Errorf("%s: exit %d, stderr %q", bad, code, errOut)
		}
	}
	st := open()
	defer st.Close()
	g, _, _ := st.GetGroup(context.Background(), "family")
	if want := (store.Budget{DayTokens: 5000, MonthUSD: 20}); g.Config.Budget != want {
		t.Errorf("budget = %+v, want %+v", g.Config.Budget, want)
	}
}
