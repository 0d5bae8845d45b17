package config

import (
	"strings"
	"testing"
)

func TestModelSetting(t *testing.T) {
	getenv, _ := env(t, "MODEL", "claude-sonnet-4-5")
	c, err := Load(getenv)
	if err != nil || c.Model != "claude-sonnet-4-5" {
		t.Fatalf("MODEL=claude-sonnet-4-5: %q, %v", c.Model, err)
	}
	for _, bad := range []string{"--dangerously-skip-permissions", "claude sonnet"} {
		getenv, _ := env(t, "MODEL", bad)
		if _, err := Load(getenv); err == nil || !strings.Contains(err.Error(), "MODEL") {
			t.Errorf("MODEL=%q: error %v, want one naming MODEL", bad, err)
		}
	}
}
