package status

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// A flood of refusals leaves one event per destination and group, not one
// per attempt.
func TestDenialsAreThrottled(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d := NewDenials(st, nil)
	for range 1000 {
		d.Record("fam", "10.0.0.1:80", "private address")
	}
	d.Record("work", "169.254.169.254:80", "link-local address")
	evs, err := st.Events(ctx, "", 100, store.EventDenied)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Detail != "10.0.0.1:80: private address" || evs[1].Folder != "work" {
		t.Fatalf("denials recorded: %+v", evs)
	}
}
