package gateway

// End-to-end with the real Claude Code: the call that crosses a group's
// budget finishes, the next is refused with the budget's message, which
// Claude Code reports as the run's error without retrying it (a 400 it
// sent again five times with fewer beta flags).

import (
	"bytes"
	"context"
	"math"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

func TestClaudeCodeOverBudget(t *testing.T) {
	bin := testenv.ClaudeBinary(t)
	fake := fakeapi.New()
	defer fake.Close()
	usage := &testUsage{}
	src := &memBudgets{usage: usage, group: map[string]Budget{"family": {DayTokens: 500}}}
	prices, err := ParsePrices(DefaultPrices)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Upstream: mustURL(t, fake.URL()), APIKey: realKey, Usage: usage, Prices: prices,
		Budget: NewBudgeter(BudgetOptions{Source: src})})
	e.usage = usage
	ep := e.open(t, "family", false, egress.Policy{})
	proxy := "http://" + forwarder(t, ep.path)
	// The first turn reports 600 cache tokens read: over the budget once
	// it ends, and Claude Code goes on to run the tool and call again.
	fake.Script(fakeapi.ToolUse("Bash", map[string]string{"command": "echo ran"}).WithCache(600, 0), fakeapi.Text("never sent"))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-p", "--output-format", "stream-json", "--verbose",
		"--permission-mode", "dontAsk", "--allowedTools", "Bash", "--", "run it")
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "ANTHROPIC_BASE_URL=" + proxy,
		"ANTHROPIC_API_KEY=" + ipc.PlaceholderAPIKey, "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	out, _ := cmd.Output() // a run that ends in an API error exits 1
	t.Logf("claude took %v; upstream saw:\n%s", time.Since(start).Round(time.Millisecond), fake.Summary())
	result := resultLine(t, out)
	text, _ := result["result"].(string)
	want := "API Error: 402 nanoclaw: group family's daily budget of 500 tokens is reached ("
	if result["is_error"] != true || !strings.HasPrefix(text, want) {
		t.Errorf("result %v\nwant an error with %q\nstderr: %s", result, want, stderr.Bytes())
	}
	if n := len(fake.MainRequests()); n != 1 {
		t.Errorf("%d main requests reached the upstream, want 1", n)
	}
	// Not retried: one refusal (a retry would come back within the run).
	if st := e.gw.Stats()["family"]; st.APIRefused != 1 {
		t.Errorf("%d calls refused, want 1: Claude Code retried a budget refusal", st.APIRefused)
	}
	// The default price of Claude Code's default model is the one Claude
	// Code itself counts by.
	e.gw.Close()
	cost, _ := result["total_cost_usd"].(float64)
	if recs := usage.wait(t, 1); len(recs) != 1 || recs[0].CacheRead != 600 || recs[0].Cost != int64(math.Round(cost*1e6)) || cost == 0 {
		t.Errorf("recorded %+v; Claude Code counted $%v", recs, cost)
	}
}
