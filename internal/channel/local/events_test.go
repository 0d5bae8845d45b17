package local

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSubscribersGetTheirChatsEvents(t *testing.T) {
	c, r := connected(t)
	main, cancelMain := c.Subscribe("local:main")
	defer cancelMain()
	other, cancelOther := c.Subscribe("local:other")
	defer cancelOther()

	ctx := context.Background()
	r.Seq = 6
	if _, err := c.Deliver(ctx, Draft{Chat: "local:main", Sender: "a", Text: "hi", ID: "m1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetTyping(ctx, "local:main", true); err != nil {
		t.Fatal(err)
	}
	ids, err := c.Send(ctx, "local:main", "Andy: hi")
	if err != nil || len(ids) != 1 || len(ids[0]) != 16 {
		t.Fatalf("Send: %v %v", ids, err)
	}
	c.SetTyping(ctx, "local:main", false)
	c.RunDone("local:main", 7, nil)
	c.RunDone("local:main", 8, errors.New("container died"))

	want := []Event{
		{Type: EventStored, Chat: "local:main", ID: "m1", Seq: 7, WillAnswer: true},
		{Type: EventTyping, Chat: "local:main", Typing: true},
		{Type: EventReply, Chat: "local:main", ID: ids[0], Text: "Andy: hi"},
		{Type: EventTyping, Chat: "local:main"},
		{Type: EventDone, Chat: "local:main", UpTo: 7},
		{Type: EventDone, Chat: "local:main", UpTo: 8, Error: "container died"},
	}
	for i, w := range want {
		got := <-main
		if got.Time.IsZero() {
			t.Errorf("event %d has no time", i)
		}
		got.Time = time.Time{}
		if got != w {
			t.Errorf("event %d = %+v, want %+v", i, got, w)
		}
	}
	select {
	case ev := <-other:
		t.Errorf("other chat's subscriber got %+v", ev)
	default:
	}
	if _, err := c.Send(ctx, "123@g.us", "x"); err == nil {
		t.Error("Send to a WhatsApp chat succeeded")
	}
	if err := c.SetTyping(ctx, "local:BAD", true); err == nil {
		t.Error("SetTyping to a bad chat succeeded")
	}
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	c, _ := connected(t)
	slow, cancelSlow := c.Subscribe("local:main") // never read until the end
	defer cancelSlow()
	fast, cancelFast := c.Subscribe("local:main")
	defer cancelFast()

	// Publish in batches and drain the fast subscriber between them, so it
	// never falls behind however slow the machine; the slow one never reads.
	const batch, batches = SubscriberBuffer / 2, 6
	for range batches {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range batch {
				c.Send(context.Background(), "local:main", "reply")
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			go func() { // unblock the publisher, so that cleanup can Close
				for range slow {
				}
			}()
			t.Fatal("publishing blocked on a subscriber that does not read")
		}
		for i := range batch {
			if ev := <-fast; ev.Type != EventReply {
				t.Fatalf("fast subscriber's event %d: %+v", i, ev)
			}
		}
	}
	// The slow one got its buffer's worth, then lagged, then its channel closed.
	var events []Event
	for ev := range slow {
		events = append(events, ev)
	}
	if len(events) != SubscriberBuffer+1 {
		t.Fatalf("slow subscriber got %d events, want %d", len(events), SubscriberBuffer+1)
	}
	last := events[len(events)-1]
	if last.Type != EventLagged || !strings.Contains(last.Error, "behind") {
		t.Errorf("last event %+v, want lagged", last)
	}
	if c.Subscribers("local:main") != 1 {
		t.Errorf("subscribers = %d, want the fast one only", c.Subscribers("local:main"))
	}
	cancelSlow() // harmless after the cut-off
}

func TestCancelAndClose(t *testing.T) {
	c, _ := connected(t)
	a, cancelA := c.Subscribe("local:main")
	b, _ := c.Subscribe("local:main")
	cancelA()
	cancelA()
	if _, ok := <-a; ok {
		t.Error("cancelled subscription still open")
	}
	if c.Subscribers("local:main") != 1 {
		t.Errorf("subscribers = %d after cancel", c.Subscribers("local:main"))
	}
	c.Close()
	c.Close()
	if _, ok := <-b; ok {
		t.Error("subscription open after Close")
	}
	d, cancelD := c.Subscribe("local:main")
	if _, ok := <-d; ok {
		t.Error("subscription after Close is open")
	}
	cancelD()
}

func TestEventCovers(t *testing.T) {
	cases := []struct {
		ev   Event
		seq  int64
		want bool
	}{
		{Event{Type: EventDone, UpTo: 5}, 5, true},
		{Event{Type: EventDone, UpTo: 6}, 5, true},
		{Event{Type: EventDone, UpTo: 4}, 5, false},
		{Event{Type: EventDone, UpTo: 4, Error: "x"}, 5, false},
		{Event{Type: EventDone, Error: "x"}, 5, true},
		{Event{Type: EventReply, UpTo: 9}, 5, false},
	}
	for _, tc := range cases {
		if got := tc.ev.Covers(tc.seq); got != tc.want {
			t.Errorf("%+v.Covers(%d) = %v", tc.ev, tc.seq, got)
		}
	}
}
