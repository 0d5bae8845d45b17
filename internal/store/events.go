package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// EventKind is one step of a message's way through the daemon, as `status
// --group` shows it to the owner who asks why the assistant did (not) reply.
type EventKind string

// The steps, in the order a message takes them.
const (
	EventStored   EventKind = "stored"   // a message was stored; detail: who sent it
	EventIgnored  EventKind = "ignored"  // it asks for no answer; detail: why
	EventQueued   EventKind = "queued"   // its group waits for a place
	EventStarted  EventKind = "started"  // the group's container started
	EventPrompted EventKind = "prompted" // a prompt went to the agent; detail: how many messages
	EventReplied  EventKind = "replied"  // the reply was kept for sending (or the agent chose silence)
	EventFailed   EventKind = "failed"   // the run or the reply failed; detail: the error
	EventDenied   EventKind = "denied"   // the gateway refused a destination; detail: which
	EventSkipped  EventKind = "skipped"  // a scheduled run was skipped; detail: why
)

var eventKinds = []EventKind{EventStored, EventIgnored, EventQueued, EventStarted, EventPrompted,
	EventReplied, EventFailed, EventDenied, EventSkipped}

// Caps of the trace: each group keeps its newest MaxEventsPerGroup steps
// and, apart from them so that they cannot push the steps out, its newest
// MaxDenialsPerGroup refused destinations; a detail is clipped to
// MaxEventDetail bytes.
const (
	MaxEventsPerGroup  = 200
	MaxDenialsPerGroup = 50
	MaxEventDetail     = 300
)

// eventsColumns are the events table's, in schema and in step v7.
var eventsColumns = `
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	at       INTEGER NOT NULL CHECK (at >= 0),
	folder   TEXT NOT NULL CHECK (` + folderRule("folder") + `),
	chat_jid TEXT NOT NULL,
	seq      INTEGER NOT NULL CHECK (seq >= 0),
	kind     TEXT NOT NULL CHECK (kind IN ('stored', 'ignored', 'queued', 'started', 'prompted', 'replied', 'failed', 'denied', 'skipped')),
	detail   TEXT NOT NULL CHECK (octet_length(detail) <= 300)`

// Event is one step of the trace of a group.
type Event struct {
	At     time.Time
	Folder string
	Chat   string // "" when the step is the group's, not a chat's
	Seq    int64  // the newest message the step concerns; 0 if none
	Kind   EventKind
	Detail string
}

// Validate checks every field of e.
func (e Event) Validate() error {
	if !slices.Contains(eventKinds, e.Kind) {
		return fmt.Errorf("unknown event kind %q", e.Kind)
	}
	if e.Seq < 0 || e.At.Before(time.UnixMilli(0)) || len(e.Detail) > MaxEventDetail {
		return fmt.Errorf("event %s out of range", e.Kind)
	}
	return ValidateFolder(e.Folder)
}

// AddEvents records steps of groups' traces, in one transaction, and drops
// each group's events beyond the caps. Details are
// clipped, so any text may be passed.
func (s *Store) AddEvents(ctx context.Context, evs ...Event) error {
	for i := range evs {
		e := &evs[i]
		e.At = cmp.Or(e.At, time.Now())
		e.Detail = sanitize.Clip(e.Detail, MaxEventDetail, "…")
		if err := e.Validate(); err != nil {
			return fmt.Errorf("record %s event of group %q: %w", e.Kind, e.Folder, err)
		}
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, e := range evs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO events (at, folder, chat_jid, seq, kind, detail) VALUES (?, ?, ?, ?, ?, ?)`,
				e.At.UnixMilli(), e.Folder, e.Chat, e.Seq, string(e.Kind), e.Detail); err != nil {
				return fmt.Errorf("record %s event of group %q: %w", e.Kind, e.Folder, err)
			}
		}
		for _, e := range evs {
			denied, keep := e.Kind == EventDenied, MaxEventsPerGroup
			if denied {
				keep = MaxDenialsPerGroup
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE folder = ?1 AND (kind = 'denied') = ?3 AND id <= (
				SELECT id FROM events WHERE folder = ?1 AND (kind = 'denied') = ?3 ORDER BY id DESC LIMIT 1 OFFSET ?2)`,
				e.Folder, keep, denied); err != nil {
				return err
			}
		}
		return nil
	})
}

func scanEvent(sc scanner) (e Event, key string, err error) {
	var at int64
	var kind string
	err = sc.Scan(&e.Folder, &e.Chat, &e.Seq, &kind, &e.Detail, &at)
	e.Kind, e.At = EventKind(kind), time.UnixMilli(at)
	return e, fmt.Sprintf("%s/%d", e.Folder, at), cmp.Or(err, e.Validate())
}

// Events returns the newest events, at most limit, oldest first: of the
// group in folder, or of every group when folder is "" — then only those of
// kinds (all kinds when none are given).
func (s *Store) Events(ctx context.Context, folder string, limit int, kinds ...EventKind) ([]Event, error) {
	what := fmt.Sprintf("events of group %q", folder)
	// The statement is made for the case, so that an index serves it (none
	// serves "?1 = '' OR folder = ?1"): events_folder a group's steps,
	// events_kind the newest of one kind of every group.
	var where []string
	var args []any
	if folder != "" {
		where, args = append(where, "folder = ?"), append(args, folder)
	}
	switch len(kinds) {
	case 0:
	case 1:
		where, args = append(where, "kind = ?"), append(args, string(kinds[0]))
	default:
		ks := []string{}
		for _, k := range kinds {
			ks = append(ks, string(k))
		}
		kj, _ := json.Marshal(ks)
		where, args = append(where, "kind IN (SELECT value FROM json_each(?))"), append(args, string(kj))
	}
	query := `SELECT folder, chat_jid, seq, kind, detail, at FROM events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	evs, err := queryList(ctx, s, what, "events", scanEvent, query+` ORDER BY id DESC LIMIT ?`, append(args, limit)...)
	slices.Reverse(evs)
	return evs, err
}
