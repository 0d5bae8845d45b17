package status

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Denials keeps the egress destinations the gateway refused as events of
// the group's trace, for `status`. A container that hammers refused
// addresses must neither flood the store nor hide a destination behind
// decoys: each destination is recorded at most once a minute, a group's
// refusals at most DenialsPerMinute times a minute, and the refusals not
// recorded are counted in the group's next record. The store keeps a
// group's denials apart from its message trace (store.MaxDenialsPerGroup),
// so they cannot push the messages' steps out.
type Denials struct {
	st  *store.Store
	log *slog.Logger

	mu      sync.Mutex
	seen    map[string]time.Time // folder + " " + target → last recorded
	windows map[string]*window   // folder → this minute's records
}

type window struct {
	start   time.Time
	n       int // recorded in this minute
	skipped int // not recorded since the group's last record
}

// DenialsPerMinute is how many refusals a group may have recorded a minute.
const DenialsPerMinute = 20

// NewDenials records refusals in st.
func NewDenials(st *store.Store, log *slog.Logger) *Denials {
	return &Denials{st: st, log: cmp.Or(log, slog.Default()), seen: make(map[string]time.Time), windows: make(map[string]*window)}
}

// Record is the gateway's OnDenied.
func (d *Denials) Record(folder, target, reason string) {
	now := time.Now()
	d.mu.Lock()
	w := d.windows[folder]
	if w == nil {
		w = &window{start: now}
		d.windows[folder] = w
	}
	if now.Sub(w.start) >= time.Minute {
		w.start, w.n = now, 0
	}
	key := folder + " " + target
	if now.Sub(d.seen[key]) < time.Minute || w.n >= DenialsPerMinute {
		w.skipped++
		d.mu.Unlock()
		return
	}
	if len(d.seen) > 10_000 { // forget the old ones rather than grow
		for k, t := range d.seen {
			if now.Sub(t) >= time.Minute {
				delete(d.seen, k)
			}
		}
	}
	d.seen[key] = now
	w.n++
	detail := target + ": " + reason
	if w.skipped > 0 {
		detail = fmt.Sprintf("%s (and %d more refusals not recorded one by one)", detail, w.skipped)
		w.skipped = 0
	}
	if w.n == DenialsPerMinute {
		detail += fmt.Sprintf(" (%d refusals this minute: more are counted, not listed)", DenialsPerMinute)
	}
	d.mu.Unlock()
	e := store.Event{At: now, Folder: folder, Kind: store.EventDenied, Detail: detail}
	if err := d.st.AddEvents(context.Background(), e); err != nil {
		d.log.Warn("keep trace", "group", folder, "err", err)
	}
}
