package scheduler

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

func TestNewTask(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC) // 12:00 in Berlin
	good := TaskRequest{Prompt: "Summarise the news", ScheduleType: "cron", ScheduleValue: "0 9 * * *"}

	task, err := NewTask(good, "family", "family@g.us", now, berlin)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^task-[0-9a-f]{10}$`).MatchString(task.ID) {
		t.Errorf("id %q", task.ID)
	}
	want := store.Task{
		ID: task.ID, Folder: "family", ChatJID: "family@g.us", Prompt: "Summarise the news",
		ScheduleType: store.ScheduleCron, ScheduleValue: "0 9 * * *", Timezone: "Europe/Berlin",
		ContextMode: store.ContextGroup, Status: store.TaskActive, CreatedAt: now,
	}
	if task.NextRun == nil || !task.NextRun.Equal(time.Date(2026, 5, 5, 7, 0, 0, 0, time.UTC)) {
		t.Fatalf("NextRun = %v, want 09:00 Berlin tomorrow", task.NextRun)
	}
	task.NextRun = nil
	if task != want {
		t.Fatalf("NewTask = %+v\nwant %+v", task, want)
	}
	if other, _ := NewTask(good, "family", "family@g.us", now, berlin); other.ID == want.ID {
		t.Fatal("two tasks got the same id")
	}

	for _, tc := range []struct {
		name     string
		edit     func(*TaskRequest)
		folder   string
		chat     string
		tz       *time.Location
		wantNext time.Time
		wantErr  string
	}{
		{name: "isolated", edit: func(r *TaskRequest) { r.ContextMode = "isolated" }, wantNext: time.Date(2026, 5, 5, 7, 0, 0, 0, time.UTC)},
		{name: "own zone", edit: func(r *TaskRequest) { r.Timezone = "America/New_York" }, wantNext: time.Date(2026, 5, 4, 13, 0, 0, 0, time.UTC)},
		{name: "interval", edit: func(r *TaskRequest) { r.ScheduleType, r.ScheduleValue = "interval", "3600000" }, wantNext: now.Add(time.Hour)},
		{name: "interval under a lower minimum", edit: func(r *TaskRequest) {
			r.ScheduleType, r.ScheduleValue, r.MinInterval = "interval", "5000", time.Second
		}, wantNext: now.Add(5 * time.Second)},
		{name: "once local", edit: func(r *TaskRequest) { r.ScheduleType, r.ScheduleValue = "once", "2026-05-04T18:30" }, wantNext: time.Date(2026, 5, 4, 16, 30, 0, 0, time.UTC)},
		{name: "prompt at the limit", edit: func(r *TaskRequest) { r.Prompt = strings.Repeat("a", MaxPromptBytes) }, wantNext: time.Date(2026, 5, 5, 7, 0, 0, 0, time.UTC)},

		{name: "empty prompt", edit: func(r *TaskRequest) { r.Prompt = " \n\t" }, wantErr: "prompt is empty"},
		{name: "long prompt", edit: func(r *TaskRequest) { r.Prompt = strings.Repeat("a", MaxPromptBytes+1) }, wantErr: "prompt is 16385 bytes, at most 16384"},
		{name: "invalid UTF-8", edit: func(r *TaskRequest) { r.Prompt = "caf\xe9" }, wantErr: "prompt is not valid UTF-8"},
		{name: "context mode", edit: func(r *TaskRequest) { r.ContextMode = "shared" }, wantErr: `unknown context mode "shared" (want group or isolated)`},
		{name: "zone", edit: func(r *TaskRequest) { r.Timezone = "Mars/Olympus" }, wantErr: `time zone "Mars/Olympus"`},
		{name: "zone Local", edit: func(r *TaskRequest) { r.Timezone = "Local" }, wantErr: `time zone "Local"`},
		{name: "default zone Local", tz: time.Local, wantErr: `time zone "Local"`},
		{name: "schedule type", edit: func(r *TaskRequest) { r.ScheduleType = "daily" }, wantErr: `unknown schedule type "daily"`},
		{name: "cron 6 fields", edit: func(r *TaskRequest) { r.ScheduleValue = "0 0 9 * * *" }, wantErr: "must have 5 fields"},
		{name: "interval minimum", edit: func(r *TaskRequest) { r.ScheduleType, r.ScheduleValue = "interval", "5000" }, wantErr: "interval must be at least 60000 ms"},
		{name: "once past", edit: func(r *TaskRequest) { r.ScheduleType, r.ScheduleValue = "once", "2026-05-04T11:59" }, wantErr: "once time 2026-05-04T11:59 is in the past"},
		{name: "folder", folder: "../etc", wantErr: "invalid group folder"},
		{name: "chat", chat: "bad\njid", wantErr: "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := good
			if tc.edit != nil {
				tc.edit(&req)
			}
			folder, chat, tz := "family", "family@g.us", berlin
			if tc.folder != "" {
				folder = tc.folder
			}
			if tc.chat != "" {
				chat = tc.chat
			}
			if tc.tz != nil {
				tz = tc.tz
			}
			task, err := NewTask(req, folder, chat, now, tz)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if task.NextRun == nil || !task.NextRun.Equal(tc.wantNext) {
				t.Fatalf("NextRun = %v, want %v", task.NextRun, tc.wantNext)
			}
			if err := task.Validate(); err != nil {
				t.Fatalf("NewTask returned an invalid task: %v", err)
			}
		})
	}
}

func TestUpdate(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	created := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	orig, err := NewTask(TaskRequest{Prompt: "old", ScheduleType: "cron", ScheduleValue: "0 9 * * *"}, "family", "family@g.us", created, berlin)
	if err != nil {
		t.Fatal(err)
	}
	now := created.Add(30 * time.Minute)
	str := func(s string) *string { return &s }
	at := func(t time.Time) *time.Time { return &t }

	for _, tc := range []struct {
		name string
		edit TaskEdit
		want store.Task // the fields an edit may change
	}{
		// The prompt alone: the next run stays.
		{"prompt", TaskEdit{Prompt: str("new")},
			store.Task{Prompt: "new", ScheduleType: store.ScheduleCron, ScheduleValue: "0 9 * * *", NextRun: orig.NextRun}},
		// A new cron value: the next run is recomputed from now, in the task's zone.
		{"cron value", TaskEdit{ScheduleValue: str("0 18 * * *")},
			store.Task{Prompt: "old", ScheduleType: store.ScheduleCron, ScheduleValue: "0 18 * * *", NextRun: at(time.Date(2026, 5, 4, 16, 0, 0, 0, time.UTC))}},
		// A new type and value.
		{"interval", TaskEdit{ScheduleType: str("interval"), ScheduleValue: str("120000")},
			store.Task{Prompt: "old", ScheduleType: store.ScheduleInterval, ScheduleValue: "120000", NextRun: at(now.Add(2 * time.Minute))}},
		{"once", TaskEdit{ScheduleType: str("once"), ScheduleValue: str("2026-06-01T08:00")},
			store.Task{Prompt: "old", ScheduleType: store.ScheduleOnce, ScheduleValue: "2026-06-01T08:00", NextRun: at(time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Update(orig, tc.edit, now)
			if err != nil {
				t.Fatal(err)
			}
			if got.Prompt != tc.want.Prompt || got.ScheduleType != tc.want.ScheduleType || got.ScheduleValue != tc.want.ScheduleValue || !got.NextRun.Equal(*tc.want.NextRun) {
				t.Fatalf("Update = %+v (next %v), want %+v (next %v)", got, got.NextRun, tc.want, tc.want.NextRun)
			}
			if got.Status != orig.Status || got.ID != orig.ID || got.Timezone != orig.Timezone {
				t.Fatalf("Update changed more than asked: %+v", got)
			}
		})
	}

	for _, tc := range []struct {
		name    string
		edit    TaskEdit
		wantErr string
	}{
		{"type without a fitting value", TaskEdit{ScheduleType: str("interval")}, `interval "0 9 * * *" is not a whole number`},
		{"bad cron", TaskEdit{ScheduleValue: str("0 9 * *")}, "must have 5 fields"},
		{"interval minimum", TaskEdit{ScheduleType: str("interval"), ScheduleValue: str("1000")}, "interval must be at least 60000 ms"},
		{"once past", TaskEdit{ScheduleType: str("once"), ScheduleValue: str("2026-05-04T12:00")}, "is in the past"},
		{"empty prompt", TaskEdit{Prompt: str("")}, "prompt is empty"},
	} {
		if _, err := Update(orig, tc.edit, now); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestNextRunOfStoredTask(t *testing.T) {
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	due := now.Add(-25 * time.Second)
	at := func(t time.Time) *time.Time { return &t }
	for _, tc := range []struct {
		name        string
		kind        store.ScheduleType
		value, zone string
		claimed     *time.Time // the task's NextRun: the due time of a claimed run
		now         time.Time
		want        *time.Time // nil: no further run
		wantErr     string     // part of the error; "": none
	}{
		// Stored before the minimum was raised: still runs, on its grid.
		{"claimed interval under the minimum", store.ScheduleInterval, "10000", "UTC", &due, now, at(due.Add(30 * time.Second)), ""},
		{"claimed once task", store.ScheduleOnce, "2026-05-04T11:00:00Z", "UTC", &due, now, nil, ""},
		// Not claimed (resuming): the first run after now.
		{"resumed once task", store.ScheduleOnce, "2026-05-04T11:00:00Z", "UTC", nil, now, at(now.Add(time.Hour)), ""},
		{"resumed once task past its time", store.ScheduleOnce, "2026-05-04T11:00:00Z", "UTC", nil, now.Add(2 * time.Hour), nil, ""},
		{"resumed interval task", store.ScheduleInterval, "60000", "UTC", nil, now, at(now.Add(time.Minute)), ""},
		{"broken cron", store.ScheduleCron, "not cron", "UTC", &due, now, nil, "must have 5 fields"},
		{"the host's zone", store.ScheduleCron, "* * * * *", "Local", &due, now, nil, `time zone "Local"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			task := store.Task{ID: "t", ScheduleType: tc.kind, ScheduleValue: tc.value, Timezone: tc.zone, NextRun: tc.claimed}
			next, err := NextRun(task, tc.now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || (next == nil) != (tc.want == nil) || next != nil && !next.Equal(*tc.want) {
				t.Fatalf("NextRun = %v, %v; want %v", next, err, tc.want)
			}
		})
	}
}
