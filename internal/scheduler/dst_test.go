package scheduler

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

func utc(month time.Month, day, hour, min int) time.Time {
	return time.Date(2026, month, day, hour, min, 0, 0, time.UTC)
}

// runsOn lists the runs of s during the local day of day in loc, by chaining
// Next from the day's start.
func runsOn(t *testing.T, s Schedule, loc *time.Location, day time.Time) []time.Time {
	t.Helper()
	start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc)
	end := time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
	var runs []time.Time
	at := start.Add(-time.Nanosecond)
	for {
		next, ok := s.Next(at)
		if !ok {
			t.Fatalf("no run after %v", at)
		}
		if !next.After(at) {
			t.Fatalf("Next(%v) = %v, not after it", at, next)
		}
		if !next.Before(end) {
			return runs
		}
		runs = append(runs, next.UTC())
		at = next
	}
}

// The 2026 changes: America/New_York springs forward on March 8 (02:00 EST
// → 03:00 EDT) and falls back on November 1 (02:00 EDT → 01:00 EST);
// Europe/Berlin springs forward on March 29 (02:00 CET → 03:00 CEST) and
// falls back on October 25 (03:00 CEST → 02:00 CET).
var dstCases = []struct {
	name, zone, expr string
	day              time.Time
	want             []time.Time // the runs that day, UTC
}{
	// A time in the spring-forward gap runs once, when the gap ends.
	{"New York spring 02:30", "America/New_York", "30 2 * * *", utc(3, 8, 12, 0), []time.Time{utc(3, 8, 7, 0)}},
	{"Berlin spring 02:30", "Europe/Berlin", "30 2 * * *", utc(3, 29, 12, 0), []time.Time{utc(3, 29, 1, 0)}},
	{"New York spring 02:00", "America/New_York", "0 2 * * *", utc(3, 8, 12, 0), []time.Time{utc(3, 8, 7, 0)}},
	// Times around the gap are untouched.
	{"New York spring 01:30", "America/New_York", "30 1 * * *", utc(3, 8, 12, 0), []time.Time{utc(3, 8, 6, 30)}},
	{"New York spring 03:30", "America/New_York", "30 3 * * *", utc(3, 8, 12, 0), []time.Time{utc(3, 8, 7, 30)}},
	{"Berlin spring 01:30", "Europe/Berlin", "30 1 * * *", utc(3, 29, 12, 0), []time.Time{utc(3, 29, 0, 30)}},
	// A repeated time runs once, at its first occurrence (before the change).
	{"New York fall 01:30", "America/New_York", "30 1 * * *", utc(11, 1, 12, 0), []time.Time{utc(11, 1, 5, 30)}},
	{"Berlin fall 02:30", "Europe/Berlin", "30 2 * * *", utc(10, 25, 12, 0), []time.Time{utc(10, 25, 0, 30)}},
	{"Berlin fall 01:30", "Europe/Berlin", "30 1 * * *", utc(10, 25, 12, 0), []time.Time{utc(10, 24, 23, 30)}},
	{"New York fall 01:00 and 01:45", "America/New_York", "0,45 1 * * *", utc(11, 1, 12, 0), []time.Time{utc(11, 1, 5, 0), utc(11, 1, 5, 45)}},
	// The day after keeps the new offset.
	{"New York after spring", "America/New_York", "30 2 * * *", utc(3, 9, 12, 0), []time.Time{utc(3, 9, 6, 30)}},
	{"New York after fall", "America/New_York", "30 1 * * *", utc(11, 2, 12, 0), []time.Time{utc(11, 2, 6, 30)}},
	{"Berlin after fall", "Europe/Berlin", "30 2 * * *", utc(10, 26, 12, 0), []time.Time{utc(10, 26, 1, 30)}},
	// An hourly job follows real hours: the missing hour has no run, the
	// repeated hour runs twice.
	{"New York spring hourly", "America/New_York", "30 * * * *", utc(3, 8, 12, 0), hourly(utc(3, 8, 5, 30), 23)},
	{"New York fall hourly", "America/New_York", "30 * * * *", utc(11, 1, 12, 0), hourly(utc(11, 1, 4, 30), 25)},
	{"Berlin spring hourly", "Europe/Berlin", "0 * * * *", utc(3, 29, 12, 0), hourly(utc(3, 28, 23, 0), 23)},
	{"Berlin fall hourly", "Europe/Berlin", "0 * * * *", utc(10, 25, 12, 0), hourly(utc(10, 24, 22, 0), 25)},
}

func hourly(first time.Time, n int) []time.Time {
	var runs []time.Time
	for i := range n {
		runs = append(runs, first.Add(time.Duration(i)*time.Hour))
	}
	return runs
}

func TestCronDST(t *testing.T) {
	for _, tc := range dstCases {
		t.Run(tc.name, func(t *testing.T) {
			loc := mustZone(t, tc.zone)
			s, err := parse(store.ScheduleCron, tc.expr, loc)
			if err != nil {
				t.Fatal(err)
			}
			got := runsOn(t, s, loc, tc.day.In(loc))
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("runs of %q on %s in %s:\n got %v\nwant %v", tc.expr, tc.day.Format("2006-01-02"), tc.zone, got, tc.want)
			}
		})
	}
}

// Every 15 minutes through the repeated hour: both passes, 15 real minutes
// apart everywhere, starting from any point of the first pass.
func TestCronDSTEveryQuarterHourFallBack(t *testing.T) {
	loc := mustZone(t, "America/New_York")
	s, err := parse(store.ScheduleCron, "*/15 * * * *", loc)
	if err != nil {
		t.Fatal(err)
	}
	runs := runsOn(t, s, loc, utc(11, 1, 12, 0).In(loc))
	if len(runs) != 25*4 {
		t.Fatalf("%d runs on the fall-back day, want 100", len(runs))
	}
	for i := 1; i < len(runs); i++ {
		if d := runs[i].Sub(runs[i-1]); d != 15*time.Minute {
			t.Fatalf("runs %v and %v are %v apart", runs[i-1], runs[i], d)
		}
	}
	// From inside the first pass (01:50 EDT), the next run is 02:00 — no:
	// 01:00 EST comes first, ten real minutes later.
	next, _ := s.Next(utc(11, 1, 5, 50))
	if !next.Equal(utc(11, 1, 6, 0)) {
		t.Fatalf("Next(01:50 EDT) = %v, want 01:00 EST (06:00 UTC)", next.In(loc))
	}
}

func TestOnceDST(t *testing.T) {
	for _, tc := range []struct {
		zone, value string
		want        time.Time
	}{
		{"America/New_York", "2026-03-08T02:30", utc(3, 8, 7, 0)},   // in the gap: its end
		{"America/New_York", "2026-11-01T01:30", utc(11, 1, 5, 30)}, // repeated: the first
		{"Europe/Berlin", "2026-03-29T02:30", utc(3, 29, 1, 0)},
		{"Europe/Berlin", "2026-10-25T02:30", utc(10, 25, 0, 30)},
		{"Europe/Berlin", "2026-10-25T02:30:00+01:00", utc(10, 25, 1, 30)}, // an offset says which
	} {
		s, err := ParseSchedule("once", tc.value, mustZone(t, tc.zone), utc(1, 1, 0, 0), 0)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Next(utc(1, 1, 0, 0)); !got.Equal(tc.want) {
			t.Errorf("once %s in %s = %v, want %v", tc.value, tc.zone, got.UTC(), tc.want)
		}
	}
}

// The same through the store, as the engine does it: a claim attempt every
// minute across each change day; a daily job is claimed exactly once.
func TestClaimAcrossDST(t *testing.T) {
	if testing.Short() {
		t.Skip("-short (make race): thousands of claims from one goroutine, slow under the race detector and nothing for it to see")
	}
	ctx := context.Background()
	st := openStore(t, t.TempDir()+"/dst.db")
	for _, tc := range []struct {
		zone, expr string
		day        time.Time
		want       time.Time
	}{
		{"America/New_York", "30 2 * * *", utc(3, 8, 12, 0), utc(3, 8, 7, 0)},
		{"America/New_York", "30 1 * * *", utc(11, 1, 12, 0), utc(11, 1, 5, 30)},
		{"Europe/Berlin", "30 2 * * *", utc(3, 29, 12, 0), utc(3, 29, 1, 0)},
		{"Europe/Berlin", "30 2 * * *", utc(10, 25, 12, 0), utc(10, 25, 0, 30)},
	} {
		loc := mustZone(t, tc.zone)
		local := tc.day.In(loc)
		start := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
		end := start.AddDate(0, 0, 1)
		task, err := NewTask(TaskRequest{Prompt: "p", ScheduleType: "cron", ScheduleValue: tc.expr, Timezone: tc.zone},
			"family", "family@g.us", start.Add(-time.Hour), time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateTaskWithin(ctx, task, store.TaskCaps{}); err != nil {
			t.Fatal(err)
		}
		var claims []time.Time
		for now := start; now.Before(end); now = now.Add(time.Minute) {
			claimed, err := st.ClaimDue(ctx, now, 0, DefaultRunLease, func(t store.Task) (*time.Time, error) { return NextRun(t, now) })
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range claimed {
				if c.ID == task.ID {
					claims = append(claims, c.Due.UTC())
				}
			}
		}
		if len(claims) != 1 || !claims[0].Equal(tc.want) {
			t.Errorf("%q in %s on %s: claimed at %v, want once at %v", tc.expr, tc.zone, start.Format("2006-01-02"), claims, tc.want)
		}
		if err := st.SetTaskStatus(ctx, task.ID, store.TaskCancelled); err != nil {
			t.Fatal(err)
		}
	}
}

// A task keeps its own zone: created while the host is in one zone, it fires
// at its local time after the host's zone changed, and across its own DST
// change.
func TestTaskKeepsItsZoneWhenHostZoneChanges(t *testing.T) {
	saved := time.Local
	t.Cleanup(func() { time.Local = saved })
	time.Local = mustZone(t, "Asia/Tokyo")
	berlin := mustZone(t, "Europe/Berlin")

	created := time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)
	task, err := NewTask(TaskRequest{Prompt: "Guten Morgen", ScheduleType: "cron", ScheduleValue: "0 9 * * *"},
		"family", "family@g.us", created, berlin) // the host's TZ at creation: Berlin
	if err != nil {
		t.Fatal(err)
	}
	if task.Timezone != "Europe/Berlin" {
		t.Fatalf("task zone = %q, want the default Europe/Berlin", task.Timezone)
	}

	// The host moves to Los Angeles (its TZ and the process's zone).
	time.Local = mustZone(t, "America/Los_Angeles")
	now := created
	for range 14 { // across Berlin's change on March 29
		next, err := NextRun(task, now)
		if err != nil {
			t.Fatal(err)
		}
		if b := next.In(berlin); b.Hour() != 9 || b.Minute() != 0 || !next.After(now) {
			t.Fatalf("run at %v (Berlin %v), want 09:00 Berlin", next.UTC(), b)
		}
		task.NextRun = next
		now = *next
	}
	// A new task without a zone takes the new default; the old one is unchanged.
	la, err := NewTask(TaskRequest{Prompt: "p", ScheduleType: "cron", ScheduleValue: "0 9 * * *"},
		"family", "family@g.us", created, mustZone(t, "America/Los_Angeles"))
	if err != nil || la.Timezone != "America/Los_Angeles" || la.NextRun.In(time.Local).Hour() != 9 {
		t.Fatalf("task created after the change: %+v, %v", la, err)
	}
}
