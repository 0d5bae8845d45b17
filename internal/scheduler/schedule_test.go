package scheduler

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

func mustZone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParseSchedule(t *testing.T) {
	berlin := mustZone(t, "Europe/Berlin")
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC) // a Monday, 12:00 in Berlin
	for _, tc := range []struct {
		name, kind, value string
		min               time.Duration
		wantNext          time.Time // the first run after now; zero when an error is wanted
		wantErr           string
	}{
		// cron, in Berlin (UTC+2 in May)
		{"cron daily", "cron", "0 9 * * *", 0, time.Date(2026, 5, 5, 7, 0, 0, 0, time.UTC), ""},
		{"cron weekdays", "cron", "30 8 * * 1-5", 0, time.Date(2026, 5, 5, 6, 30, 0, 0, time.UTC), ""},
		{"cron step", "cron", "*/15 * * * *", 0, time.Date(2026, 5, 4, 10, 15, 0, 0, time.UTC), ""},
		{"cron names", "cron", "0 12 * JAN-DEC SAT", 0, time.Date(2026, 5, 9, 10, 0, 0, 0, time.UTC), ""},
		{"cron spaces", "cron", "  0   13 * *  * ", 0, time.Date(2026, 5, 4, 11, 0, 0, 0, time.UTC), ""},
		{"cron last day of month", "cron", "0 0 L * *", 0, time.Date(2026, 5, 30, 22, 0, 0, 0, time.UTC), ""},
		{"cron @daily", "cron", "@daily", 0, time.Date(2026, 5, 4, 22, 0, 0, 0, time.UTC), ""},
		{"cron @HOURLY", "cron", "@HOURLY", 0, time.Date(2026, 5, 4, 11, 0, 0, 0, time.UTC), ""},
		{"cron 6 fields", "cron", "0 0 9 * * *", 0, time.Time{}, `must have 5 fields (minute hour day month weekday), got 6`},
		{"cron 6 fields with a year", "cron", "0 9 * * * 2027", 0, time.Time{}, `got 6`},
		{"cron 4 fields", "cron", "0 9 * *", 0, time.Time{}, `got 4`},
		{"cron 7 fields", "cron", "0 0 9 * * * 2027", 0, time.Time{}, `got 7`},
		{"cron @reboot", "cron", "@reboot", 0, time.Time{}, "@reboot is not supported"},
		{"cron @everysecond", "cron", "@everysecond", 0, time.Time{}, `unknown cron shorthand "@everysecond"`},
		{"cron @every", "cron", "@every 5m", 0, time.Time{}, `unknown cron shorthand "@every 5m"`},
		{"cron bad minute", "cron", "61 * * * *", 0, time.Time{}, `minute field "61" is not valid`},
		{"cron bad hour", "cron", "0 24 * * *", 0, time.Time{}, `hour field "24" is not valid`},
		{"cron bad day", "cron", "0 0 32 * *", 0, time.Time{}, `day-of-month field "32" is not valid`},
		{"cron bad month", "cron", "0 0 1 13 *", 0, time.Time{}, `month field "13" is not valid`},
		{"cron bad weekday", "cron", "0 0 * * 9", 0, time.Time{}, `weekday field "9" is not valid`},
		{"cron words", "cron", "a b c d e", 0, time.Time{}, `minute field "a" is not valid`},
		{"cron never", "cron", "0 0 31 2 *", 0, time.Time{}, `cron expression "0 0 31 2 *" never fires`},
		{"cron empty", "cron", " ", 0, time.Time{}, "empty cron schedule value"},

		// interval
		{"interval minute", "interval", "60000", 0, now.Add(time.Minute), ""},
		{"interval day", "interval", "86400000", 0, now.Add(24 * time.Hour), ""},
		{"interval below the minimum", "interval", "59999", 0, time.Time{}, "interval must be at least 60000 ms (1m0s), got 59999"},
		{"interval with a lower minimum", "interval", "1000", time.Second, now.Add(time.Second), ""},
		{"interval below a higher minimum", "interval", "60000", time.Hour, time.Time{}, "interval must be at least 3600000 ms"},
		{"interval zero", "interval", "0", time.Millisecond, time.Time{}, "interval must be a positive number of milliseconds, got 0"},
		{"interval negative", "interval", "-60000", 0, time.Time{}, `interval "-60000" is not a whole number of milliseconds`},
		{"interval plus sign", "interval", "+60000", 0, time.Time{}, `interval "+60000" is not a whole number`},
		{"interval unit", "interval", "1h", 0, time.Time{}, `interval "1h" is not a whole number`},
		{"interval float", "interval", "6e4", 0, time.Time{}, `interval "6e4" is not a whole number`},
		{"interval huge", "interval", "99999999999999999999", 0, time.Time{}, "interval must be at most"},

		// once
		{"once local", "once", "2026-07-01T09:00", 0, time.Date(2026, 7, 1, 7, 0, 0, 0, time.UTC), ""},
		{"once local seconds", "once", "2026-07-01T09:00:30", 0, time.Date(2026, 7, 1, 7, 0, 30, 0, time.UTC), ""},
		{"once RFC 3339", "once", "2026-07-01T09:00:00-04:00", 0, time.Date(2026, 7, 1, 13, 0, 0, 0, time.UTC), ""},
		{"once RFC 3339 UTC", "once", "2026-07-01T09:00:00Z", 0, time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC), ""},
		{"once past local", "once", "2026-01-02T03:04", 0, time.Time{}, "once time 2026-01-02T03:04 is in the past"},
		{"once an hour ago", "once", "2026-05-04T11:00", 0, time.Time{}, "is in the past"},
		{"once now", "once", "2026-05-04T10:00:00Z", 0, time.Time{}, "is in the past"},
		{"once space", "once", "2026-07-01 09:00", 0, time.Time{}, `once time "2026-07-01 09:00": want local time YYYY-MM-DDTHH:MM[:SS]`},
		{"once words", "once", "tomorrow", 0, time.Time{}, `once time "tomorrow"`},
		{"once bad date", "once", "2026-02-30T09:00", 0, time.Time{}, `once time "2026-02-30T09:00"`},

		{"unknown kind", "weekly", "x", 0, time.Time{}, `unknown schedule type "weekly" (want cron, interval or once)`},
		{"empty kind", "", "x", 0, time.Time{}, `unknown schedule type ""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := ParseSchedule(tc.kind, tc.value, berlin, now, tc.min)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseSchedule(%q, %q) error = %v, want it to contain %q", tc.kind, tc.value, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSchedule(%q, %q): %v", tc.kind, tc.value, err)
			}
			if s.kind != store.ScheduleType(tc.kind) {
				t.Errorf("kind = %q", s.kind)
			}
			next, ok := s.Next(now)
			if !ok || !next.Equal(tc.wantNext) {
				t.Fatalf("Next(%v) = %v, %v; want %v", now, next.UTC(), ok, tc.wantNext)
			}
		})
	}
}

func TestParseScheduleNoZone(t *testing.T) {
	if _, err := ParseSchedule("cron", "* * * * *", nil, time.Now(), 0); err == nil {
		t.Fatal("a schedule without a zone was accepted")
	}
}

func TestNextIsStrictlyAfter(t *testing.T) {
	loc := mustZone(t, "Europe/Berlin")
	at := time.Date(2026, 5, 4, 9, 0, 0, 0, loc)
	s, err := parse(store.ScheduleCron, "0 9 * * *", loc)
	if err != nil {
		t.Fatal(err)
	}
	for _, after := range []time.Time{at, at.Add(time.Millisecond), at.Add(-time.Nanosecond)} {
		next, _ := s.Next(after)
		want := at
		if !after.Before(at) {
			want = at.AddDate(0, 0, 1)
		}
		if !next.Equal(want) {
			t.Errorf("Next(%v) = %v, want %v", after, next, want)
		}
	}
	once, _ := parse(store.ScheduleOnce, "2026-05-04T09:00", loc)
	if next, ok := once.Next(at.Add(-time.Second)); !ok || !next.Equal(at) {
		t.Errorf("once: Next before = %v, %v", next, ok)
	}
	if _, ok := once.Next(at); ok {
		t.Error("once: a run after its time")
	}
}

func TestFollowingKeepsIntervalPhase(t *testing.T) {
	s, err := parse(store.ScheduleInterval, "600000", time.UTC) // 10 minutes
	if err != nil {
		t.Fatal(err)
	}
	due := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		now, want time.Time
	}{
		{due, due.Add(10 * time.Minute)},                            // on time
		{due.Add(40 * time.Millisecond), due.Add(10 * time.Minute)}, // a little late: no drift
		{due.Add(35 * time.Minute), due.Add(40 * time.Minute)},      // host down for 3 runs: one run now, then on the grid
		{due.Add(40 * time.Minute), due.Add(50 * time.Minute)},
	} {
		if got, ok := s.following(due, tc.now); !ok || !got.Equal(tc.want) {
			t.Errorf("following(due, now=%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
	cron, _ := parse(store.ScheduleCron, "0 * * * *", time.UTC)
	if got, _ := cron.following(due, due.Add(5*time.Hour+time.Minute)); !got.Equal(due.Add(6 * time.Hour)) {
		t.Errorf("cron after missed runs: following = %v, want the first after now", got)
	}
}

func TestTruncate(t *testing.T) {
	if got := truncate("short", 10); got != "short" {
		t.Fatalf("truncate(short) = %q", got)
	}
	long := strings.Repeat("é", 3000) // 6000 bytes
	got := truncate(long, MaxRecordBytes)
	if len(got) > MaxRecordBytes || !strings.HasSuffix(got, "… [truncated, 6000 bytes in all]") || !strings.HasPrefix(got, "éé") {
		t.Fatalf("truncate = %d bytes, ends %q", len(got), got[len(got)-40:])
	}
	if !strings.HasPrefix(strings.TrimSuffix(got, "… [truncated, 6000 bytes in all]"), strings.Repeat("é", 2000)) {
		t.Fatal("truncate cut more than needed")
	}
	for i := range len(got) {
		if got[i] == 0xc3 && i+1 < len(got) && got[i+1] != 0xa9 {
			t.Fatalf("truncate split a character at byte %d", i)
		}
	}
}

// R9: the shortest interval holds for cron expressions too, at their most
// frequent; day fields never make a cron expression look rarer than it is.
func TestCronMinimumInterval(t *testing.T) {
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		expr  string
		every time.Duration
	}{
		{"* * * * *", time.Minute},
		{"*/5 * * * *", 5 * time.Minute},
		{"*/7 * * * *", 4 * time.Minute}, // :56 then :00
		{"0,1 9 * * *", time.Minute},
		{"0-4 9 1 1 *", time.Minute}, // a burst once a year is still a burst
		{"5/20 * * * *", 20 * time.Minute},
		{"0 * * * *", time.Hour},
		{"@hourly", time.Hour},
		{"59 8 * * *", 24 * time.Hour},
		{"59 8,9 * * *", time.Hour},
		{"59 23 * * *", 24 * time.Hour},
		{"58 23,0 * * *", time.Hour},
		{"0,58 0,23 * * 1", 2 * time.Minute}, // 23:58, then 00:00 of a possible next day
		{"30 9 * * 1-5", 24 * time.Hour},
		{"@daily", 24 * time.Hour},
	} {
		s, err := ParseSchedule("cron", tc.expr, time.UTC, now, time.Minute)
		if err != nil {
			t.Errorf("%q: %v", tc.expr, err)
			continue
		}
		if got := cronMinGap(s.cron); got != tc.every {
			t.Errorf("%q runs at most every %v, want %v", tc.expr, got, tc.every)
		}
		_, err = ParseSchedule("cron", tc.expr, time.UTC, now, tc.every+time.Minute)
		var tooFrequent *TooFrequentError
		if !errors.As(err, &tooFrequent) || tooFrequent.Every != tc.every || !strings.Contains(err.Error(), "the shortest allowed interval is") {
			t.Errorf("%q with a minimum above %v: %v, want a TooFrequentError", tc.expr, tc.every, err)
		}
		if _, err := ParseSchedule("cron", tc.expr, time.UTC, now, tc.every); err != nil {
			t.Errorf("%q with a minimum of exactly %v: %v", tc.expr, tc.every, err)
		}
	}
}

// A schedule reaches the owner's terminal and main's model: control
// characters, which cron parsing would take as separators, are refused.
func TestParseScheduleRefusesControlCharacters(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct{ kind, value string }{
		{"cron", "0\r9 * * *"}, {"cron", "0 9\v* * *"}, {"cron", "0 9 *\f* *"}, {"cron", "0 9 * *\u0085*"},
		{"cron", "0 9 * * *\x1b[2J"}, {"interval", "3600000\n"},
	} {
		if _, err := ParseSchedule(c.kind, c.value, time.UTC, now, time.Minute); err == nil || !strings.Contains(err.Error(), "printable") {
			t.Errorf("%q: %v", c.value, err)
		}
	}
	if _, err := ParseSchedule("cron", "0 9 * * *", time.UTC, now, time.Minute); err != nil {
		t.Error(err)
	}
}
