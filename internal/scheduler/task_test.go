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

	// The prompt alone: the next run stays.
	got, err := Update(orig, TaskEdit{Prompt: str("new")}, now)
	if err != nil || got.Prompt != "new" || !got.NextRun.Equal(*orig.NextRun) {
		t.Fatalf("prompt update = %+v, %v", got, err)
	}
	// A new cron value: the next run is recomputed from now, in the task's zone.
	got, err = Update(orig, TaskEdit{ScheduleValue: str("0 18 * * *")}, now)
	if err != nil || !got.NextRun.Equal(time.Date(2026, 5, 4, 16, 0, 0, 0, time.UTC)) || got.ScheduleValue != "0 18 * * *" {
		t.Fatalf("cron update = next %v, %v", got.NextRun, err)
	}
	// A new type and value.
	got, err = Update(orig, TaskEdit{ScheduleType: str("interval"), ScheduleValue: str("120000")}, now)
	if err != nil || got.ScheduleType != store.ScheduleInterval || !got.NextRun.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("interval update = %+v, %v", got, err)
	}
	got, err = Update(orig, TaskEdit{ScheduleType: str("once"), ScheduleValue: str("2026-06-01T08:00")}, now)
	if err != nil || !got.NextRun.Equal(time.Date(2026, 6, 1, 6, 0, 0, 0, time.UTC)) {
		t.Fatalf("once update = %v, %v", got.NextRun, err)
	}
	if got.Status != orig.Status || got.ID != orig.ID || got.Timezone != orig.Timezone {
		t.Fatalf("Update changed more than asked: %+v", got)
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
	task := store.Task{ID: "t", ScheduleType: store.ScheduleInterval, ScheduleValue: "10000", Timezone: "UTC", NextRun: &due}
	// Stored before the minimum was raised: still runs, on its grid.
	next, err := NextRun(task, now)
	if err != nil || !next.Equal(due.Add(30*time.Second)) {
		t.Fatalf("NextRun = %v, %v; want %v", next, err, due.Add(30*time.Second))
	}
	task.ScheduleType, task.ScheduleValue = store.ScheduleOnce, "2026-05-04T11:00:00Z"
	if next, err := NextRun(task, now); err != nil || next != nil {
		t.Fatalf("claimed once task: NextRun = %v, %v; want none", next, err)
	}
	// Not claimed (resuming): the first run after now.
	task.NextRun = nil
	if next, err := NextRun(task, now); err != nil || next == nil || !next.Equal(now.Add(time.Hour)) {
		t.Fatalf("resumed once task: NextRun = %v, %v; want its time", next, err)
	}
	if next, err := NextRun(task, now.Add(2*time.Hour)); err != nil || next != nil {
		t.Fatalf("resumed once task past its time: NextRun = %v, %v; want none", next, err)
	}
	task.ScheduleType, task.ScheduleValue = store.ScheduleInterval, "60000"
	if next, err := NextRun(task, now); err != nil || next == nil || !next.Equal(now.Add(time.Minute)) {
		t.Fatalf("resumed interval task: NextRun = %v, %v; want now + interval", next, err)
	}
	task.NextRun = &due
	task.ScheduleType, task.ScheduleValue = store.ScheduleCron, "not cron"
	if _, err := NextRun(task, now); err == nil || !strings.Contains(err.Error(), "must have 5 fields") {
		t.Fatalf("broken cron: err = %v", err)
	}
	task.ScheduleValue, task.Timezone = "* * * * *", "Local"
	if _, err := NextRun(task, now); err == nil {
		t.Fatal("a task in the host's zone was scheduled")
	}
}
