package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// Spooled copies no unsent message names are removed once old; a copy an
// unsent message needs, and a new one, stay.
func TestSweepSpool(t *testing.T) {
	ctx := context.Background()
	st := testenv.OpenStore(t, filepath.Join(t.TempDir(), "db"), store.Options{})
	dir := t.TempDir()
	o := store.NewOutgoing("local:main", "main", "Andy: [file a.pdf]")
	o.File = &store.OutFile{Spool: "needed.pdf", Name: "a.pdf", MIME: "application/pdf", Kind: "document"}
	if err := st.Enqueue(ctx, o); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	for _, name := range []string{"needed.pdf", "orphan.pdf", "fresh.pdf"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if name != "fresh.pdf" {
			os.Chtimes(p, old, old)
		}
	}
	n, err := sweepSpool(ctx, st, dir, time.Now().Add(-24*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("sweepSpool = %d, %v; want 1 removed", n, err)
	}
	for name, want := range map[string]bool{"needed.pdf": true, "orphan.pdf": false, "fresh.pdf": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s kept: %v, want %v", name, err == nil, want)
		}
	}
}
