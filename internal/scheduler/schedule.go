// Package scheduler runs scheduled tasks: it parses and validates their
// schedules (cron, interval, once), computes their next runs in each task's
// own time zone, and runs an engine that sleeps on one timer until the
// earliest next run, claims due tasks atomically in the store and hands them
// to the host's queue.
//
// NanoClaw polled its tasks every 60 seconds, so a task could start up to a
// minute late, and a task could run twice when a run took longer than the
// poll. Here there is no poll: the engine wakes when the earliest task is
// due (or when Changed says the tasks changed), and a due run is moved on in
// the store by a compare-and-set before it is dispatched, so no second
// engine, restart or clock jump can start the same run again.
//
// # Daylight-saving time
//
// A cron expression names wall-clock times in the task's zone. Where the
// clocks jump, the rules are close to Vixie cron's (which also counts a '*'
// minute field as "every hour"):
//
//   - A job tied to given hours (the hour field does not start with '*', e.g.
//     "30 2 * * *") runs once per wall-clock time. If that time does not exist
//     (spring forward skips 02:00–03:00) it runs once at the end of the gap,
//     the first instant after it (03:00 new time). If it happens twice (fall
//     back repeats 01:00–02:00) it runs at the first occurrence only.
//   - A job that runs every hour (the hour field starts with '*', e.g.
//     "*/15 * * * *") follows real hours: it skips times that do not exist
//     and runs in the repeated hour again, as that hour really passes twice.
//
// A once time given without a zone follows the first rule.
package scheduler

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/adhocore/gronx"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// DefaultMinInterval is the shortest interval a task may have unless the host
// is configured with a lower one: every run starts a container and spends
// tokens, so a runaway "every second" task must not be possible by mistake.
const DefaultMinInterval = time.Minute

// MaxInterval is the longest interval a task may have.
const MaxInterval = 10 * 366 * 24 * time.Hour

// onceLayouts are the accepted forms of a once time without a zone, read in
// the task's zone.
var onceLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04"}

// cronMacros are the standard cron shorthands; each stands for 5 fields.
// gronx knows more (@always, @5minutes, @everysecond), which are not cron and
// are refused so that a schedule means the same thing everywhere.
var cronMacros = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

var cronFieldNames = [5]string{"minute", "hour", "day-of-month", "month", "weekday"}

// Schedule is a parsed, valid task schedule. The zero Schedule never runs.
type Schedule struct {
	kind     store.ScheduleType
	cron     string         // cron: the 5 fields, macros expanded
	everyHr  bool           // cron: the hour field starts with '*' (see the package doc on DST)
	interval time.Duration  // interval
	at       time.Time      // once
	loc      *time.Location // cron, once: the zone wall-clock times are read in
}

// TooFrequentError is ParseSchedule's refusal of an interval, or of a cron
// expression, that runs more often than the shortest interval allowed.
type TooFrequentError struct {
	Kind  store.ScheduleType // interval or cron
	Value string             // as given
	Every time.Duration      // the shortest time between two runs
	Min   time.Duration      // the shortest allowed
}

func (e *TooFrequentError) Error() string {
	if e.Kind == store.ScheduleInterval {
		return fmt.Sprintf("interval must be at least %d ms (%v), got %s", e.Min.Milliseconds(), e.Min, e.Value)
	}
	return fmt.Sprintf("cron expression %q runs as often as every %v; the shortest allowed interval is %v", e.Value, e.Every, e.Min)
}

// ParseSchedule parses and validates a schedule as a user or the agent gives
// it, for a task in zone loc: kind is "cron", "interval" or "once"; value is
// a 5-field cron expression, a period in milliseconds, or a time
// ("2026-01-02T15:04[:05]" in loc, or RFC 3339 with a zone) that must be
// after now. An interval, or a cron expression at its most frequent, must be
// at least minInterval apart (<= 0 means DefaultMinInterval); else the error
// is a *TooFrequentError.
func ParseSchedule(kind, value string, loc *time.Location, now time.Time, minInterval time.Duration) (Schedule, error) {
	minInterval = cmp.Or(max(minInterval, 0), DefaultMinInterval)
	// A schedule is printed on the owner's terminal and read by main's
	// model: printable text and spaces only (a carriage return would
	// otherwise pass as a field separator).
	if i := strings.IndexFunc(value, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }); i >= 0 {
		return Schedule{}, fmt.Errorf("%s schedule value %q: only printable characters and spaces are allowed", kind, value)
	}
	s, err := parse(store.ScheduleType(kind), value, loc)
	if err != nil {
		return Schedule{}, err
	}
	switch s.kind {
	case store.ScheduleInterval:
		if s.interval < minInterval {
			return Schedule{}, &TooFrequentError{Kind: s.kind, Value: value, Every: s.interval, Min: minInterval}
		}
	case store.ScheduleOnce:
		if !s.at.After(now) {
			return Schedule{}, fmt.Errorf("once time %s is in the past (now is %s)", value, now.In(loc).Format("2006-01-02T15:04:05 MST"))
		}
	case store.ScheduleCron:
		if _, ok := s.Next(now); !ok {
			return Schedule{}, fmt.Errorf("cron expression %q never fires", value)
		}
		// R9: "* * * * *" is as frequent as a one-minute interval.
		if every := cronMinGap(s.cron); every < minInterval {
			return Schedule{}, &TooFrequentError{Kind: s.kind, Value: value, Every: every, Min: minInterval}
		}
	}
	return s, nil
}

// parse reads a schedule without the checks that depend on when it is given
// (minimum interval, once time in the future): a stored task's schedule must
// still be readable after the host's minimum was raised or its time passed.
// On an error the Schedule is to be dropped.
func parse(kind store.ScheduleType, value string, loc *time.Location) (Schedule, error) {
	if err := kind.Validate(); err != nil {
		return Schedule{}, err
	}
	if loc == nil {
		return Schedule{}, errors.New("no time zone for the schedule")
	}
	if strings.TrimSpace(value) == "" {
		return Schedule{}, fmt.Errorf("empty %s schedule value", kind)
	}
	s := Schedule{kind: kind, loc: loc}
	var err error
	switch kind {
	case store.ScheduleCron:
		s.cron, err = parseCron(value)
		s.everyHr = err == nil && strings.HasPrefix(strings.Fields(s.cron)[1], "*")
	case store.ScheduleInterval:
		s.interval, err = parseInterval(value)
	case store.ScheduleOnce:
		s.at, err = parseOnce(value, loc)
	}
	return s, err
}

func parseCron(value string) (string, error) {
	expr := strings.TrimSpace(value)
	if strings.HasPrefix(expr, "@") {
		if fields, ok := cronMacros[strings.ToLower(expr)]; ok {
			return fields, nil
		}
		if strings.EqualFold(expr, "@reboot") {
			return "", errors.New("cron @reboot is not supported: a task runs at times, not at start-up; give 5 fields (minute hour day month weekday)")
		}
		return "", fmt.Errorf("unknown cron shorthand %q (known: @yearly @monthly @weekly @daily @hourly; or give 5 fields)", expr)
	}
	fields := strings.Fields(expr)
	if len(fields) != 5 {
		return "", fmt.Errorf("cron expression %q must have 5 fields (minute hour day month weekday), got %d", value, len(fields))
	}
	expr = strings.Join(fields, " ")
	if gronx.IsValid(expr) {
		return expr, nil
	}
	// Name the field at fault: check each alone, the others a wildcard.
	for i, f := range fields {
		probe := []string{"*", "*", "*", "*", "*"}
		probe[i] = f
		if !gronx.IsValid(strings.Join(probe, " ")) {
			return "", fmt.Errorf("cron expression %q: %s field %q is not valid", value, cronFieldNames[i], f)
		}
	}
	return "", fmt.Errorf("cron expression %q is not valid", value)
}

// cronMinGap is the shortest time between two runs of a valid 5-field cron
// expression, never more: it is exact within a day and assumes that any day
// may follow any other (the day fields only ever make runs rarer). A minute
// or hour field it cannot expand counts as '*'.
func cronMinGap(expr string) time.Duration {
	fields := strings.Fields(expr)
	minutes := cronValues(fields[0], 0, 59)
	hours := cronValues(fields[1], 0, 23)
	gap := 24 * 60 // minutes
	for i := 1; i < len(minutes); i++ {
		gap = min(gap, minutes[i]-minutes[i-1])
	}
	hourGap := 24 // to the next run hour, on the same day or the next
	for i := range hours {
		next := hours[0] + 24
		if i+1 < len(hours) {
			next = hours[i+1]
		}
		hourGap = min(hourGap, next-hours[i])
	}
	gap = min(gap, hourGap*60-minutes[len(minutes)-1]+minutes[0])
	return time.Duration(gap) * time.Minute
}

// cronValues expands a minute or hour field (lists of *, n, a-b, each with an
// optional /step) into its sorted values in [lo, hi]. What it does not know
// is taken as every value, the most frequent reading.
func cronValues(field string, lo, hi int) []int {
	var all []int
	for v := lo; v <= hi; v++ {
		all = append(all, v)
	}
	set := make([]bool, hi+1)
	for part := range strings.SplitSeq(field, ",") {
		rng, step := part, 1
		if r, st, ok := strings.Cut(part, "/"); ok {
			n, err := strconv.Atoi(st)
			if err != nil || n <= 0 {
				return all
			}
			rng, step = r, n
		}
		from, to := lo, hi
		if rng != "*" {
			a, b, isRange := strings.Cut(rng, "-")
			var err1, err2 error
			from, err1 = strconv.Atoi(a)
			to, err2 = from, nil
			if isRange {
				to, err2 = strconv.Atoi(b)
			} else if step > 1 {
				to = hi // "5/15" is 5-hi/15
			}
			if err1 != nil || err2 != nil || from < lo || to > hi || from > to {
				return all
			}
		}
		for v := from; v <= to; v += step {
			set[v] = true
		}
	}
	values := slices.DeleteFunc(slices.Clone(all), func(v int) bool { return !set[v] })
	if len(values) == 0 {
		return all
	}
	return values
}

func parseInterval(value string) (time.Duration, error) {
	if strings.Trim(value, "0123456789") != "" {
		return 0, fmt.Errorf("interval %q is not a whole number of milliseconds", value)
	}
	ms, err := strconv.ParseInt(value, 10, 64)
	if err != nil || ms > MaxInterval.Milliseconds() {
		return 0, fmt.Errorf("interval must be at most %d ms (%v), got %s", MaxInterval.Milliseconds(), MaxInterval, value)
	}
	if ms <= 0 {
		return 0, fmt.Errorf("interval must be a positive number of milliseconds, got %s", value)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

func parseOnce(value string, loc *time.Location) (time.Time, error) {
	v := strings.TrimSpace(value)
	if at, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return at, nil
	}
	for _, layout := range onceLayouts {
		if w, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return resolve(w, loc).first, nil
		}
	}
	return time.Time{}, fmt.Errorf("once time %q: want local time YYYY-MM-DDTHH:MM[:SS] (in the task's zone) or RFC 3339 with a zone, e.g. 2026-01-02T15:04:05+01:00", value)
}

// Next returns the first run strictly after after; false means there is none
// (a once task whose time has come, or a cron expression that never fires).
func (s Schedule) Next(after time.Time) (time.Time, bool) {
	switch s.kind {
	case store.ScheduleInterval:
		return after.Add(s.interval), true
	case store.ScheduleOnce:
		return s.at, s.at.After(after)
	case store.ScheduleCron:
		return s.nextCron(after)
	}
	return time.Time{}, false
}

// following returns the run that follows a claimed run that was due at due,
// when it is now: the first run after now, so runs missed while the host was
// down (or busy) are not caught up one by one. Interval tasks keep their
// phase: the next run is due + k·interval, not now + interval, so lateness
// does not accumulate. A once task has had its run: there is none.
func (s Schedule) following(due, now time.Time) (time.Time, bool) {
	if s.kind == store.ScheduleOnce {
		return time.Time{}, false // it has had its run
	}
	if s.kind == store.ScheduleInterval && !due.After(now) {
		k := now.Sub(due)/s.interval + 1
		return due.Add(k * s.interval), true
	}
	return s.Next(now)
}

// maxCronSteps bounds the wall-clock search of nextCron. The common case takes
// one step; an hour repeated by a DST change takes up to one per minute of it.
const maxCronSteps = 400

// nextCron finds the next run in s.loc. gronx is given wall-clock times as UTC
// values, where no hour is missing or repeated; resolve then maps each wall
// time it yields back to real instants by the rules of the package doc.
func (s Schedule) nextCron(after time.Time) (time.Time, bool) {
	local := after.In(s.loc)
	w := wall(local)
	if s.everyHr {
		// Inside the first pass of a repeated hour, the second occurrences of
		// wall times already passed are still ahead: search from the start of
		// the repeated hour.
		_, end := local.ZoneBounds()
		if !end.IsZero() {
			_, offNow := local.Zone()
			_, offNext := end.In(s.loc).Zone()
			if shift := time.Duration(offNow-offNext) * time.Second; shift > 0 && !local.Before(end.Add(-shift)) {
				w = wall(end.In(s.loc)).Add(-time.Second)
			}
		}
	}
	var best time.Time
	found := false
	for range maxCronSteps {
		next, err := gronx.NextTickAfter(s.cron, w, false)
		if err != nil || !next.After(w) {
			break
		}
		w = next
		r := resolve(w, s.loc)
		if found && !r.first.Before(best) {
			break // first occurrences only grow from here
		}
		var candidates []time.Time
		switch {
		case !r.exists && !s.everyHr:
			candidates = []time.Time{r.first} // the end of the gap
		case r.exists && s.everyHr && r.twice:
			candidates = []time.Time{r.first, r.second}
		case r.exists:
			candidates = []time.Time{r.first}
		}
		for _, c := range candidates {
			if c.After(after) && (!found || c.Before(best)) {
				best, found = c, true
			}
		}
		if found && best.Equal(r.first) {
			break
		}
	}
	return best, found
}

// wall returns t's wall-clock reading as a UTC time.
func wall(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

func sameWall(t, w time.Time) bool { return wall(t).Equal(w) }

// occurrences are the instants at which a wall-clock time happens in a zone.
type occurrences struct {
	exists bool      // false: the time falls in a gap; first is the gap's end
	first  time.Time // the first instant showing the wall time
	twice  bool      // the wall time happens again, at second
	second time.Time
}

// resolve finds when wall time w (a UTC value holding the wall-clock fields)
// happens in loc. time.Date alone does not say: in a gap it may move the time
// forward or back, and of a repeated time it may pick either occurrence (Go
// picks the first in America/New_York and the second in Europe/Berlin).
func resolve(w time.Time, loc *time.Location) occurrences {
	t := time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc)
	start, end := t.ZoneBounds()
	if !sameWall(t, w) {
		// In a gap: t was moved into the zone after it (its wall clock is
		// later) or before it. Either way the gap ends at that boundary.
		if wall(t).After(w) {
			return occurrences{first: start}
		}
		return occurrences{first: end}
	}
	at := func(offset int) time.Time { return w.Add(-time.Duration(offset) * time.Second).In(loc) }
	if !start.IsZero() {
		_, off := start.Add(-time.Nanosecond).Zone()
		if alt := at(off); alt.Before(start) && sameWall(alt, w) {
			return occurrences{exists: true, first: alt, twice: true, second: t}
		}
	}
	if !end.IsZero() {
		_, off := end.Zone()
		if alt := at(off); !alt.Before(end) && sameWall(alt, w) {
			return occurrences{exists: true, first: t, twice: true, second: alt}
		}
	}
	return occurrences{exists: true, first: t}
}
