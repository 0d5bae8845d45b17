package tools

import (
	"slices"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// The destinations the owner's "always" answers added are the owner's:
// main's model may drop them, never add one, and may not move a group
// from none or allowlist to ask (which reaches what the owner approves).
func TestApprovedDestinationsAreTheOwners(t *testing.T) {
	w := newGroupWorld(t)
	add := ipc.ConfigureGroupArgs{Folder: "family", ApprovedAllow: &[]string{"api.example.com:443"}}
	_, err := w.model("configure_group", add)
	if err == nil || !strings.Contains(err.Error(), `approved destination "api.example.com:443"`) || !strings.Contains(err.Error(), "approved=api.example.com:443") {
		t.Fatalf("main's model added an approval: %v", err)
	}
	if _, err := w.owner("configure_group", add); err != nil {
		t.Fatal(err)
	}
	var info ipc.GroupInfo
	raw, err := w.owner("get_group", ipc.FolderArgs{Folder: "family"})
	if err != nil {
		t.Fatal(err)
	}
	info = raw.(ipc.GroupInfo)
	if !slices.Equal(info.ApprovedAllow, []string{"api.example.com:443"}) {
		t.Fatalf("shown %v", info.ApprovedAllow)
	}
	if _, err := w.owner("configure_group", ipc.ConfigureGroupArgs{Folder: "family", ApprovedAllow: &[]string{"*.example.com"}}); err == nil {
		t.Error("an approval that is not one host:port was stored")
	}
	if _, err := w.model("configure_group", ipc.ConfigureGroupArgs{Folder: "family", ApprovedAllow: &[]string{}}); err != nil {
		t.Fatalf("main's model may drop approvals: %v", err)
	}
	if g := w.group(t, "family"); len(g.Config.ApprovedAllow) != 0 {
		t.Fatalf("after removal: %v", g.Config.ApprovedAllow)
	}

	for _, from := range []string{"none", "allowlist"} {
		allow := []string{}
		if from == "allowlist" {
			allow = []string{"github.com"}
		}
		if _, err := w.owner("configure_group", ipc.ConfigureGroupArgs{Folder: "family", EgressMode: ptr(from), EgressAllow: &allow}); err != nil {
			t.Fatal(err)
		}
		_, err := w.model("configure_group", ipc.ConfigureGroupArgs{Folder: "family", EgressMode: ptr("ask")})
		if err == nil || !strings.Contains(err.Error(), `egress mode "ask" reaches more`) {
			t.Errorf("main's model moved %s to ask: %v", from, err)
		}
	}
	if _, err := w.owner("configure_group", ipc.ConfigureGroupArgs{Folder: "family", EgressMode: ptr("public"), EgressAllow: &[]string{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.model("configure_group", ipc.ConfigureGroupArgs{Folder: "family", EgressMode: ptr("ask")}); err != nil {
		t.Errorf("main's model may narrow public to ask: %v", err)
	}
}
