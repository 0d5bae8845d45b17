package scheduler

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// MaxPromptBytes is the longest task prompt: a task's prompt is sent to the
// agent at every run, so it is kept to the size of a long message.
const MaxPromptBytes = 16 << 10

// TaskRequest is a task as the agent (schedule_task) or the CLI asks for it,
// still unchecked text.
type TaskRequest struct {
	Prompt        string
	ScheduleType  string // cron, interval or once
	ScheduleValue string // see ParseSchedule
	ContextMode   string // group or isolated; "" means group
	Timezone      string // IANA name; "" means the host's zone (NewTask's defaultTZ)

	// MinInterval is the host's shortest allowed interval (<= 0:
	// DefaultMinInterval). The host sets it from its configuration; it is
	// never taken from the request's sender.
	MinInterval time.Duration
}

// NewTask validates req as a new active task of the group in folder that
// reports to chatJID, created at now, and computes its first run. A task
// without a zone gets defaultTZ, which must be a named zone ("Local" would
// silently change meaning with the host's TZ). The task gets a fresh id.
func NewTask(req TaskRequest, folder, chatJID string, now time.Time, defaultTZ *time.Location) (store.Task, error) {
	if err := checkPrompt(req.Prompt); err != nil {
		return store.Task{}, err
	}
	tz := req.Timezone
	if tz == "" {
		if defaultTZ == nil {
			return store.Task{}, errors.New("no time zone given and no default zone")
		}
		tz = defaultTZ.String()
	}
	loc, err := loadZone(tz)
	if err != nil {
		return store.Task{}, err
	}
	first, err := firstRun(req.ScheduleType, req.ScheduleValue, loc, now, req.MinInterval)
	if err != nil {
		return store.Task{}, err
	}
	t := store.Task{
		ID:            newTaskID(),
		Folder:        folder,
		ChatJID:       chatJID,
		Prompt:        req.Prompt,
		ScheduleType:  store.ScheduleType(req.ScheduleType),
		ScheduleValue: strings.TrimSpace(req.ScheduleValue),
		Timezone:      tz,
		ContextMode:   store.ContextMode(cmp.Or(req.ContextMode, string(store.ContextGroup))),
		Status:        store.TaskActive,
		NextRun:       &first,
		CreatedAt:     now,
	}
	if err := t.Validate(); err != nil {
		return store.Task{}, err
	}
	return t, nil
}

// TaskEdit is a change to a task's prompt or schedule; nil fields stay as
// they are.
type TaskEdit struct {
	Prompt        *string
	ScheduleType  *string
	ScheduleValue *string

	// MinInterval is as in TaskRequest: set by the host, never by the sender.
	MinInterval time.Duration
}

// Update applies edit to t at now and returns the changed task, ready for
// store.UpdateTask. A new schedule is validated as for a new task (a once
// time must be in the future) and the next run is computed afresh from now;
// a prompt alone leaves the next run as it was. The status is not changed:
// resuming a paused or completed task is the caller's decision.
func Update(t store.Task, edit TaskEdit, now time.Time) (store.Task, error) {
	if edit.Prompt != nil {
		if err := checkPrompt(*edit.Prompt); err != nil {
			return store.Task{}, err
		}
		t.Prompt = *edit.Prompt
	}
	if edit.ScheduleType != nil || edit.ScheduleValue != nil {
		kind, value := string(t.ScheduleType), t.ScheduleValue
		if edit.ScheduleType != nil {
			kind = *edit.ScheduleType
		}
		if edit.ScheduleValue != nil {
			value = *edit.ScheduleValue
		}
		loc, err := zoneOf(t)
		if err != nil {
			return store.Task{}, err
		}
		next, err := firstRun(kind, value, loc, now, edit.MinInterval)
		if err != nil {
			return store.Task{}, err
		}
		t.ScheduleType, t.ScheduleValue, t.NextRun = store.ScheduleType(kind), strings.TrimSpace(value), &next
	}
	if err := t.Validate(); err != nil {
		return store.Task{}, err
	}
	return t, nil
}

// NextRun is the next run of stored task t at now, in its own zone (nil:
// none, the task is done). It reads the schedule without the checks of
// ParseSchedule that apply only when a schedule is given (the minimum
// interval, a once time in the future).
//
// With t.NextRun set, t is a run due then and claimed at now (the Engine
// gives this function to store.ClaimDue): the result is the first run on the
// schedule after now, an interval task keeping its phase, and a once task
// has none. With t.NextRun nil (resuming a paused task, say), it is the
// first run after now: a once task's time if that is still ahead.
func NextRun(t store.Task, now time.Time) (*time.Time, error) {
	loc, err := zoneOf(t)
	if err != nil {
		return nil, err
	}
	sched, err := parse(t.ScheduleType, t.ScheduleValue, loc)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", t.ID, err)
	}
	next, ok := sched.Next(now)
	if t.NextRun != nil {
		next, ok = sched.following(*t.NextRun, now)
	}
	if !ok {
		return nil, nil
	}
	return &next, nil
}

// firstRun parses a schedule given now (ParseSchedule) and finds its first
// run, which a schedule ParseSchedule accepts always has.
func firstRun(kind, value string, loc *time.Location, now time.Time, minInterval time.Duration) (time.Time, error) {
	sched, err := ParseSchedule(kind, value, loc, now, minInterval)
	first, _ := sched.Next(now)
	return first, err
}

// zoneOf loads t's own zone; never the host's.
func zoneOf(t store.Task) (*time.Location, error) {
	loc, err := loadZone(t.Timezone)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", t.ID, err)
	}
	return loc, nil
}

// loadZone loads a zone that store.ValidateTimezone accepts.
func loadZone(tz string) (*time.Location, error) {
	if err := store.ValidateTimezone(tz); err != nil {
		return nil, err
	}
	return time.LoadLocation(tz)
}

func checkPrompt(p string) error {
	switch {
	case strings.TrimSpace(p) == "":
		return errors.New("prompt is empty")
	case len(p) > MaxPromptBytes:
		return fmt.Errorf("prompt is %d bytes, at most %d", len(p), MaxPromptBytes)
	case !utf8.ValidString(p):
		return errors.New("prompt is not valid UTF-8")
	}
	return nil
}

// newTaskID returns "task-" and 10 random hex digits: short enough to type
// in the CLI, and CreateTaskWithin refuses the rare duplicate.
func newTaskID() string {
	b := make([]byte, 5)
	rand.Read(b) // never fails: it crashes the program instead
	return "task-" + hex.EncodeToString(b)
}
