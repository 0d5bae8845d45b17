package ipc

import (
	"strings"
	"testing"
)

func TestValidateModel(t *testing.T) {
	for _, ok := range []string{"claude-sonnet-4-5", "claude-opus-4-1-20250805", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5[1m]", "sonnet"} {
		if err := ValidateModel(ok); err != nil {
			t.Errorf("ValidateModel(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "-claude", "--dangerously-skip-permissions", "claude sonnet", "claude\n", "claude;rm", "é", strings.Repeat("a", MaxModelLen+1)} {
		if err := ValidateModel(bad); err == nil {
			t.Errorf("ValidateModel(%q) = nil, want an error", bad)
		}
	}
}
