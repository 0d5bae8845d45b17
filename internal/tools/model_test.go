package tools

import (
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Main's model may choose a group's model (it changes the cost, not the
// sandbox), in a plain form; "" goes back to the host's default.
func TestModelSetByMainsModel(t *testing.T) {
	w := newGroupWorld(t)
	info, err := w.model("configure_group", ipc.ConfigureGroupArgs{Folder: "family", Model: new("claude-opus-4-1")})
	if err != nil {
		t.Fatal(err)
	}
	if i := info.(ipc.GroupInfo); i.Model != "claude-opus-4-1" || w.group(t, "family").Config.Model != "claude-opus-4-1" {
		t.Errorf("model = %q (shown %q), want claude-opus-4-1", w.group(t, "family").Config.Model, i.Model)
	}
	for _, bad := range []string{"--dangerously-skip-permissions", "claude opus"} {
		if _, err := w.model("configure_group", ipc.ConfigureGroupArgs{Folder: "family", Model: &bad}); err == nil || !strings.Contains(err.Error(), "model") {
			t.Errorf("model %q: %v, want a refusal", bad, err)
		}
	}
	if w.group(t, "family").Config.Model != "claude-opus-4-1" {
		t.Errorf("a refused model changed the group: %q", w.group(t, "family").Config.Model)
	}
	if _, err := w.model("configure_group", ipc.ConfigureGroupArgs{Folder: "family", Model: new("")}); err != nil || w.group(t, "family").Config.Model != "" {
		t.Errorf("back to the default: %v, model %q", err, w.group(t, "family").Config.Model)
	}
}

// A budget is the owner's: main's model can neither raise nor lower it;
// the owner's fields change one by one.
func TestBudgetIsTheOwners(t *testing.T) {
	w := newGroupWorld(t)
	if _, err := w.owner("configure_group", ipc.ConfigureGroupArgs{Folder: "family", Budget: &ipc.BudgetArgs{DayTokens: new(int64(5000))}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.owner("configure_group", ipc.ConfigureGroupArgs{Folder: "family", Budget: &ipc.BudgetArgs{MonthUSD: new(20.0)}}); err != nil {
		t.Fatal(err)
	}
	want := store.Budget{DayTokens: 5000, MonthUSD: 20}
	if b := w.group(t, "family").Config.Budget; b != want {
		t.Fatalf("budget = %+v, want %+v", b, want)
	}
	for _, b := range []ipc.BudgetArgs{{DayTokens: new(int64(0))}, {DayTokens: new(int64(1 << 40))}, {DayUSD: new(1.0)}} {
		_, err := w.model("configure_group", ipc.ConfigureGroupArgs{Folder: "family", Budget: &b})
		if err == nil || !strings.Contains(err.Error(), "not permitted") || !strings.Contains(err.Error(), "nanoclaw groups set family day_tokens=") {
			t.Errorf("main's model set budget %+v: %v", b, err)
		}
	}
	if b := w.group(t, "family").Config.Budget; b != want {
		t.Errorf("budget after main's attempts = %+v, want %+v", b, want)
	}
}
