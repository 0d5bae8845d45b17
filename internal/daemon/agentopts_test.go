package daemon

import (
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/config"
)

// MODEL reaches the runner, which passes it to groups that choose none.
func TestAgentOptionsCarryTheModel(t *testing.T) {
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"HOME": t.TempDir(), "MODEL": "claude-haiku-4-5"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := AgentOptions(cfg, cfg.Home).Model; got != "claude-haiku-4-5" {
		t.Errorf("the runner's model is %q, want MODEL's", got)
	}
}
