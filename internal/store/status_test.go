package store

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Activity reads each group's newest message and reply, its tasks, and its
// usage in the month of the day asked for and on that day; of one group, no
// other group's.
func TestActivity(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	at := func(min int) time.Time { return time.Date(2025, 7, 1, 8, min, 0, 0, time.UTC) }
	for _, f := range []string{"family", "work", "quiet"} {
		mustPutGroup(t, s, testGroup(f))
	}
	for _, c := range []Chat{
		{JID: "local:family", Channel: "local", LastActivity: at(1)},
		{JID: "fam@g.us", Channel: "whatsapp", IsGroup: true, LastActivity: at(5)},
		{JID: "local:work", Channel: "local", LastActivity: at(2)},
	} {
		if err := s.UpsertChat(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for jid, folder := range map[string]string{"local:family": "family", "fam@g.us": "family", "local:work": "work"} {
		if err := s.BindChat(ctx, jid, folder); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddEvents(ctx,
		Event{At: at(3), Folder: "family", Kind: EventReplied, Seq: 1},
		Event{At: at(4), Folder: "family", Kind: EventReplied, Seq: 2},
		// A scheduled task's run (no message: seq 0) is no reply.
		Event{At: at(5), Folder: "family", Kind: EventReplied},
		Event{At: at(6), Folder: "family", Kind: EventFailed},
		Event{At: at(7), Folder: "work", Kind: EventStored},
	); err != nil {
		t.Fatal(err)
	}
	addTask(t, s, "f1", "family", at(0), TaskActive)
	addTask(t, s, "f2", "family", at(0), TaskPaused)
	addTask(t, s, "f3", "family", at(0), TaskCancelled)
	addTask(t, s, "w1", "work", at(0), TaskPaused)
	for _, u := range []struct {
		folder, day string
		in, out     int64
	}{
		{"family", "2025-06-30", 1000, 1000}, // another month
		{"family", "2025-07-01", 100, 10},
		{"family", "2025-07-03", 50, 5},
		{"family", "2025-07-03", 7, 1},
		{"family", "2025-07-04", 1000, 1000}, // after the day, in its month
		{"work", "2025-07-02", 9, 9},
		{"work", "2025-08-01", 9, 9}, // the next month
	} {
		if err := s.AddUsage(ctx, u.folder, u.day, u.in, u.out); err != nil {
			t.Fatal(err)
		}
	}

	next := testTask("f1", "family").NextRun
	family := Activity{Folder: "family", Name: "Group family", LastMessage: at(5), LastReply: at(4), Tasks: 2, NextRun: next,
		Month: UsageSum{4, 1157, 1016}, Day: UsageSum{2, 57, 6}}
	quiet := Activity{Folder: "quiet", Name: "Group quiet"}
	work := Activity{Folder: "work", Name: "Group work", LastMessage: at(2), Tasks: 1, Month: UsageSum{1, 9, 9}}
	got, err := s.Activity(ctx, "", "2025-07-03")
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range got {
		got[i] = inUTC(a)
	}
	if want := []Activity{family, quiet, work}; !reflect.DeepEqual(got, want) {
		t.Errorf("Activity of every group:\n got %+v\nwant %+v", got, want)
	}
	one, err := s.Activity(ctx, "work", "2025-07-03")
	if err != nil {
		t.Fatal(err)
	}
	if len(one) != 1 || !reflect.DeepEqual(inUTC(one[0]), work) {
		t.Errorf("Activity of work alone: %+v", one)
	}
	if none, err := s.Activity(ctx, "nobody", "2025-07-03"); err != nil || len(none) != 0 {
		t.Errorf("Activity of no group = %+v, %v", none, err)
	}
	if _, err := s.Activity(ctx, "", "July"); err == nil {
		t.Error("Activity took a day that is no date")
	}
}

// inUTC is a with its times in UTC, as the test writes them (the store
// reads them in the local zone).
func inUTC(a Activity) Activity {
	if !a.LastMessage.IsZero() {
		a.LastMessage = a.LastMessage.UTC()
	}
	if !a.LastReply.IsZero() {
		a.LastReply = a.LastReply.UTC()
	}
	if a.NextRun != nil {
		a.NextRun = new(a.NextRun.UTC())
	}
	return a
}

// NextTasks gives the soonest active tasks, of every group or of one.
func TestNextTasks(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	mustPutGroup(t, s, testGroup("work"))
	for i, tc := range []struct {
		id, folder string
		status     TaskStatus
	}{
		{"w-late", "work", TaskActive}, {"f-mid", "family", TaskActive}, {"w-early", "work", TaskActive},
		{"f-paused", "family", TaskPaused}, {"f-late", "family", TaskActive},
	} {
		task := testTask(tc.id, tc.folder)
		next := map[string]time.Time{"w-early": time.Unix(100, 0), "f-mid": time.Unix(200, 0), "w-late": time.Unix(300, 0),
			"f-late": time.Unix(400, 0), "f-paused": time.Unix(50, 0)}[tc.id]
		task.NextRun = &next
		task.CreatedAt = time.Unix(int64(i), 0)
		if err := s.CreateTaskWithin(ctx, task, TaskCaps{}); err != nil {
			t.Fatal(err)
		}
		if tc.status == TaskPaused {
			if err := s.PauseTask(ctx, tc.id, ActorOwner); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		folder string
		limit  int
		want   []string
	}{
		{"", 3, []string{"w-early", "f-mid", "w-late"}},
		{"family", 10, []string{"f-mid", "f-late"}},
		{"work", 1, []string{"w-early"}},
	} {
		tasks, err := s.NextTasks(ctx, tc.folder, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, task := range tasks {
			ids = append(ids, task.ID)
		}
		if !reflect.DeepEqual(ids, tc.want) {
			t.Errorf("NextTasks(%q, %d) = %v, want %v", tc.folder, tc.limit, ids, tc.want)
		}
	}
}

// Status reads the newest events of one kind of every group, and of one
// group (its errors, its refused destinations), newest kept, oldest first.
func TestEventsOfOneKind(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	for i, e := range []Event{
		{Folder: "fam", Kind: EventFailed, Detail: "1"}, {Folder: "work", Kind: EventStored},
		{Folder: "work", Kind: EventFailed, Detail: "2"}, {Folder: "fam", Kind: EventDenied},
		{Folder: "fam", Kind: EventFailed, Detail: "3"}, {Folder: "work", Kind: EventFailed, Detail: "4"},
	} {
		e.At = time.UnixMilli(int64(1000 + i))
		if err := s.AddEvents(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		folder string
		limit  int
		want   string
	}{
		{"", 10, "1 2 3 4"},
		{"", 2, "3 4"},
		{"fam", 10, "1 3"},
		{"work", 1, "4"},
	} {
		evs, err := s.Events(ctx, tc.folder, tc.limit, EventFailed)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.Detail)
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("Events(%q, %d, failed) = %v, want %s", tc.folder, tc.limit, got, tc.want)
		}
	}
}
