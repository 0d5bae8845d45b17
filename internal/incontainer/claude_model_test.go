package incontainer

import (
	"slices"
	"strings"
	"testing"
)

// The model reaches Claude Code as one --model= argument, and only when set.
func TestClaudeArgsModel(t *testing.T) {
	args := ClaudeArgs("", "claude-opus-4-1", "/tmp/mcp.json", "")
	if !slices.Contains(args, "--model=claude-opus-4-1") {
		t.Errorf("args %q lack --model=claude-opus-4-1", args)
	}
	for _, a := range ClaudeArgs("", "", "/tmp/mcp.json", "") {
		if strings.HasPrefix(a, "--model") {
			t.Errorf("no model given, yet %q", a)
		}
	}
}
