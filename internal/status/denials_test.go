package status

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// A flood of refusals leaves one event per destination, a bounded number
// per group, and a count of the rest; decoys cannot hide a destination
// without the count saying so, and the message trace stays.
func TestDenialsAreThrottled(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AddEvents(ctx, store.Event{Folder: "fam", Kind: store.EventStored, Seq: 1, Detail: "from Bob <b>"}); err != nil {
		t.Fatal(err)
	}
	d := NewDenials(st, nil)
	for range 1000 {
		d.Record("fam", "10.0.0.1:80", "private address")
	}
	for i := range 200 {
		d.Record("fam", fmt.Sprintf("decoy%d.example:443", i), "not in the allowlist")
	}
	d.Record("fam", "10.0.0.5:22", "private address")
	d.Record("work", "169.254.169.254:80", "link-local address")
	fam, err := st.Events(ctx, "fam", 1000, store.EventDenied)
	if err != nil {
		t.Fatal(err)
	}
	if len(fam) != DenialsPerMinute || fam[0].Detail != "10.0.0.1:80: private address" {
		t.Fatalf("fam's denials: %d, first %+v", len(fam), fam[0])
	}
	if !strings.Contains(fam[1].Detail, "and 999 more refusals not recorded") {
		t.Errorf("the throttled refusals are not counted: %q", fam[1].Detail)
	}
	if last := fam[len(fam)-1]; !strings.Contains(last.Detail, "more are counted, not listed") {
		t.Errorf("the last record of the minute does not say more are counted: %q", last.Detail)
	}
	if work, _ := st.Events(ctx, "work", 10, store.EventDenied); len(work) != 1 {
		t.Errorf("another group's denial: %+v", work)
	}
	if msgs, _ := st.Events(ctx, "fam", 10, store.EventStored); len(msgs) != 1 {
		t.Errorf("the message trace lost its step: %+v", msgs)
	}
}
