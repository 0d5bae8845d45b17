package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestEventsTraceOneGroupNewestKept(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	t0 := time.UnixMilli(1_700_000_000_000)
	for i := range MaxEventsPerGroup + 5 {
		if err := s.AddEvents(ctx, Event{At: t0.Add(time.Duration(i) * time.Second), Folder: "fam", Chat: "c1", Seq: int64(i + 1), Kind: EventStored}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddEvents(ctx, Event{Folder: "work", Kind: EventFailed, Detail: strings.Repeat("é", MaxEventDetail)}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, "fam", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != MaxEventsPerGroup || evs[0].Seq != 6 || evs[len(evs)-1].Seq != MaxEventsPerGroup+5 {
		t.Fatalf("kept %d events, seq %d..%d; want the newest %d, oldest first", len(evs), evs[0].Seq, evs[len(evs)-1].Seq, MaxEventsPerGroup)
	}
	if !evs[0].At.Equal(t0.Add(5 * time.Second)) {
		t.Errorf("first event at %v", evs[0].At)
	}
	last3, _ := s.Events(ctx, "fam", 3)
	if len(last3) != 3 || last3[2].Seq != MaxEventsPerGroup+5 {
		t.Errorf("limit 3 = %+v", last3)
	}
	failed, err := s.Events(ctx, "", 10, EventFailed, EventDenied)
	if err != nil || len(failed) != 1 || failed[0].Folder != "work" {
		t.Fatalf("failed events of all groups = %+v, %v", failed, err)
	}
	if d := failed[0].Detail; len(d) > MaxEventDetail || !strings.HasSuffix(d, "…") {
		t.Errorf("detail not clipped to %d bytes: %d bytes", MaxEventDetail, len(d))
	}
	for i := range MaxDenialsPerGroup + 10 {
		if err := s.AddEvents(ctx, Event{Folder: "fam", Kind: EventDenied, Detail: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if evs, _ := s.Events(ctx, "fam", 1000, EventStored); len(evs) != MaxEventsPerGroup {
		t.Errorf("refused destinations pushed out the group's steps: %d left", len(evs))
	}
	if evs, _ := s.Events(ctx, "fam", 1000, EventDenied); len(evs) != MaxDenialsPerGroup || evs[0].Detail != "10" {
		t.Errorf("denials kept: %d, oldest %+v", len(evs), evs[0])
	}
	for _, bad := range []Event{{Folder: "fam", Kind: "exploded"}, {Folder: "../x", Kind: EventStored}, {Folder: "fam", Kind: EventStored, Seq: -1}} {
		if err := s.AddEvents(ctx, bad); err == nil {
			t.Errorf("AddEvent(%+v) accepted", bad)
		}
	}
}
