package status

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// The report lists the newest questions and answers, of every group or of
// the one asked for.
func TestReportShowsApprovals(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, f := range []string{"fam", "work"} {
		if err := st.PutGroup(ctx, store.Group{Folder: f, Name: f, Trigger: "@Andy", AddedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := st.AddApproval(ctx, "fam", "api.example.com", 443)
	if _, err := st.DecideApproval(ctx, a.Code, egress.VerdictDeny, "owner"); err != nil {
		t.Fatal(err)
	}
	for range maxApprovals + 2 {
		if _, err := st.AddApproval(ctx, "work", "b.example", 443); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Collect(ctx, st, "", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Approvals) != maxApprovals {
		t.Fatalf("%d approvals, want the newest %d", len(r.Approvals), maxApprovals)
	}
	r, err = Collect(ctx, st, "fam", time.Now(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Approvals) != 1 {
		t.Fatalf("fam's approvals: %+v", r.Approvals)
	}
	got := r.Approvals[0]
	if got.Code != a.Code || got.Target != "api.example.com:443" || got.Decision != "deny" || got.DecidedBy != "owner" || got.DecidedAt == nil {
		t.Fatalf("approval %+v", got)
	}
}
