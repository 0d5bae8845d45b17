package scheduler

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// seedFarTasks stores n active tasks due a day or more from now. It inserts
// in one transaction, below the Store's API, only to keep the set-up fast
// (10 000 CreateTaskWithin calls would be 10 000 commits).
func seedFarTasks(b *testing.B, st *store.Store, n int) {
	b.Helper()
	ctx := context.Background()
	tx, err := st.DB().BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	base := time.Now().Add(24 * time.Hour).UnixMilli()
	for i := range n {
		kind, value := "cron", "0 9 * * *"
		if i%2 == 1 {
			kind, value = "interval", "86400000"
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO tasks (id, folder, chat_jid, prompt, schedule_type, schedule_value, timezone, context_mode, status, next_run, created_at)
			VALUES (?, 'family', 'family@g.us', 'p', ?, ?, 'Europe/Berlin', 'group', 'active', ?, ?)`,
			fmt.Sprintf("far-%05d", i), kind, value, base+int64(i)*1000, time.Now().UnixMilli()); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkDueLateness measures how late due tasks are dispatched with
// 10 000 active tasks in the store: per iteration 300 tasks come due, 200
// of them 5 ms apart and 100 at one instant. Lateness is from the stored due
// time (whole milliseconds) to the dispatch call.
func BenchmarkDueLateness(b *testing.B) {
	ctx := context.Background()
	st := openStore(b, b.TempDir()+"/bench.db")
	const total, due = 10000, 300
	seedFarTasks(b, st, total-due)
	var ids []string
	for i := range due {
		id := fmt.Sprintf("due-%03d", i)
		addTask(b, st, id, store.ScheduleInterval, "3600000", time.Now().Add(time.Hour))
		ids = append(ids, id)
	}

	var mu sync.Mutex
	dueAt := map[string]time.Time{}
	var late []time.Duration
	got := make(chan struct{}, total)
	e := New(Options{Store: st, Logger: quietLogger()})
	startEngine(b, e, func(t store.Task) {
		now := time.Now()
		mu.Lock()
		late = append(late, now.Sub(dueAt[t.ID]))
		mu.Unlock()
		// The run ends at once, ending the task's claim as the host does,
		// so the next iteration can claim it again.
		if _, err := st.AddTaskRun(ctx, store.TaskRun{TaskID: t.ID, StartedAt: now, Status: store.RunSuccess}); err != nil {
			b.Error(err)
		}
		got <- struct{}{}
	})

	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		base := time.Now().Add(300 * time.Millisecond)
		mu.Lock()
		for i, id := range ids {
			at := base.Add(time.Duration(i) * 5 * time.Millisecond)
			if i >= 200 {
				at = base.Add(1100 * time.Millisecond)
			}
			at = at.Truncate(time.Millisecond)
			dueAt[id] = at
			if _, err := st.DB().ExecContext(ctx, `UPDATE tasks SET next_run = ? WHERE id = ?`, at.UnixMilli(), id); err != nil {
				b.Fatal(err)
			}
		}
		mu.Unlock()
		e.Changed()
		b.StartTimer()
		for range due {
			select {
			case <-got:
			case <-time.After(10 * time.Second):
				b.Fatal("due tasks not dispatched within 10 s")
			}
		}
	}
	b.StopTimer()
	slices.Sort(late)
	pct := func(p float64) float64 {
		return float64(late[int(p*float64(len(late)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.5), "p50-late-ms")
	b.ReportMetric(pct(0.99), "p99-late-ms")
	b.ReportMetric(pct(1), "max-late-ms")
	if late[0] < 0 {
		b.Fatalf("a task was dispatched %v before it was due", -late[0])
	}
}

// BenchmarkCronNext is the cost of one next-run computation.
func BenchmarkCronNext(b *testing.B) {
	s, err := parse(store.ScheduleCron, "*/15 9-17 * * 1-5", mustZone(b, "Europe/Berlin"))
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 5, 4, 10, 7, 0, 0, time.UTC)
	for b.Loop() {
		s.Next(at)
	}
}
