package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/control"
	"github.com/nanoclaw/nanoclaw/internal/status"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// The target, reported, never asserted: `status` answers in ≤ 50 ms
// with 1 000 groups and 10 000 tasks in the store.
const (
	benchGroups        = 1000
	benchTasksPerGroup = 10
	benchUsageDays     = 7 // a group's agent ran on a week's days of the month
)

// fillStatusStore makes the database of a data home under home as a busy
// owner's would be: benchGroups groups, each with a bound chat, a few
// messages, a trace of events, model usage on benchUsageDays days of this
// month (fewer in its first days: status sums this month's), and
// benchTasksPerGroup tasks (one in five paused).
func fillStatusStore(b *testing.B, home string, now time.Time) {
	b.Helper()
	ctx := context.Background()
	dir := filepath.Join(home, ".nanoclaw", "store")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(dir, "nanoclaw.db"), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// Filling needs no durability: one connection without a sync at each
	// of the many commits makes it seconds rather than a minute.
	st.DB().SetMaxOpenConns(1)
	if _, err := st.DB().ExecContext(ctx, `PRAGMA synchronous = OFF`); err != nil {
		b.Fatal(err)
	}
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	for i := range benchGroups {
		folder, chat := fmt.Sprintf("group-%04d", i), fmt.Sprintf("local:group-%04d", i)
		at := now.Add(-time.Duration(benchGroups-i) * time.Minute)
		must(st.PutGroup(ctx, store.Group{Folder: folder, Name: folder, Trigger: "@Andy", RequiresTrigger: true, IsMain: i == 0, AddedAt: at}))
		must(st.UpsertChat(ctx, store.Chat{JID: chat, Channel: "local", LastActivity: at}))
		must(st.BindChat(ctx, chat, folder))
		var evs []store.Event
		for m := range 3 {
			seq, _, err := st.AddMessage(ctx, store.Message{ChatJID: chat, ID: fmt.Sprint(m), Sender: "carol", SenderName: "Carol",
				Content: "@Andy what is on today?", Timestamp: at})
			must(err)
			for _, k := range []store.EventKind{store.EventStored, store.EventQueued, store.EventStarted, store.EventPrompted, store.EventReplied} {
				evs = append(evs, store.Event{At: at, Folder: folder, Chat: chat, Seq: seq, Kind: k})
			}
		}
		evs = append(evs, store.Event{At: at, Folder: folder, Kind: store.EventFailed, Detail: "the run failed: timed out"},
			store.Event{At: at, Folder: folder, Kind: store.EventDenied, Detail: "10.0.0.1:22"})
		must(st.AddEvents(ctx, evs...))
		for d := range min(benchUsageDays, now.UTC().Day()) {
			must(st.AddUsage(ctx, folder, now.UTC().AddDate(0, 0, -d).Format(store.DayLayout), 1200, 300))
		}
		for n := range benchTasksPerGroup {
			next := now.Add(time.Duration(i*benchTasksPerGroup+n) * time.Second)
			t := store.Task{ID: fmt.Sprintf("%s-task-%d", folder, n), Folder: folder, ChatJID: chat, Prompt: "summarise the news",
				ScheduleType: store.ScheduleInterval, ScheduleValue: "3600000", Timezone: "UTC", ContextMode: store.ContextIsolated,
				Status: store.TaskActive, NextRun: &next, CreatedAt: at}
			if n%5 == 4 {
				t.Status, t.PausedBy = store.TaskPaused, store.ActorOwner
			}
			must(st.CreateTaskWithin(ctx, t, store.TaskCaps{}))
		}
	}
}

// BenchmarkStatus reports the median time `status` takes on a store of
// benchGroups groups and benchGroups×benchTasksPerGroup tasks: the report
// made in process (of every group, and of one group with its trace), and
// `nanoclaw status --json` end to end against the running daemon.
func BenchmarkStatus(b *testing.B) {
	ctx := context.Background()
	home := b.TempDir()
	now := time.Now()
	began := time.Now()
	fillStatusStore(b, home, now)
	b.Logf("filled the store in %v", time.Since(began).Round(time.Millisecond))
	collect := func(folder string, wantGroups int) func(b *testing.B) {
		return func(b *testing.B) {
			st := testenv.OpenStore(b, filepath.Join(home, ".nanoclaw", "store", "nanoclaw.db"), store.Options{})
			defer st.Close() // before the daemon opens it
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				rep, err := status.Collect(ctx, st, folder, now, nil)
				took = append(took, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				checkReport(b, rep, wantGroups)
			}
			b.ReportMetric(ms(median(took)), "ms")
		}
	}
	b.Run("collect", collect("", benchGroups))
	b.Run("collect-group", collect("group-0500", 1))

	cli := func(wantGroups int, args ...string) func(b *testing.B) {
		return func(b *testing.B) {
			env := benchEnv(b)(home)
			d, _ := startBenchDaemon(b, env, home)
			defer d.stop(b)
			d.settled(b)
			bin, _ := benchBinary() // startBenchDaemon checked it
			var took []time.Duration
			for b.Loop() {
				cmd := exec.Command(bin, append([]string{"status", "--json"}, args...)...)
				cmd.Env = env
				start := time.Now()
				out, err := cmd.Output()
				took = append(took, time.Since(start))
				if err != nil {
					b.Fatalf("status: %v:\n%s", err, d.stderr)
				}
				var rep status.Report
				if err := json.Unmarshal(out, &rep); err != nil || !rep.Running {
					b.Fatalf("status --json: %v, running %v:\n%.500s", err, rep.Running, out)
				}
				checkReport(b, &rep, wantGroups)
			}
			b.ReportMetric(ms(median(took)), "ms")
		}
	}
	// The daemon's answer alone, to a client in this process: what the CLI
	// adds on top is its own start (a process, the config) and printing.
	b.Run("answer", func(b *testing.B) {
		env := benchEnv(b)(home)
		d, _ := startBenchDaemon(b, env, home)
		defer d.stop(b)
		d.settled(b)
		cl := control.Dial(filepath.Join(home, ".nanoclaw", "control.sock"))
		var took []time.Duration
		for b.Loop() {
			start := time.Now()
			rep, err := cl.Status(context.Background(), "")
			took = append(took, time.Since(start))
			if err != nil {
				b.Fatalf("status: %v:\n%s", err, d.stderr)
			}
			checkReport(b, rep, benchGroups)
		}
		b.ReportMetric(ms(median(took)), "ms")
	})
	b.Run("cli", cli(benchGroups))
	b.Run("cli-group", cli(1, "--group", "group-0500"))
}

// checkReport fails b unless rep is the whole report of the filled store:
// so what is timed is the work status has to do, not an error's shortcut.
func checkReport(b *testing.B, rep *status.Report, wantGroups int) {
	b.Helper()
	if len(rep.Groups) != wantGroups || len(rep.Errors) == 0 || len(rep.Denials) == 0 || len(rep.Tasks) == 0 {
		b.Fatalf("report has %d groups (want %d), %d errors, %d denials, %d tasks", len(rep.Groups), wantGroups,
			len(rep.Errors), len(rep.Denials), len(rep.Tasks))
	}
	g := rep.Groups[len(rep.Groups)-1]
	if g.LastMessage.IsZero() || g.LastReply.IsZero() || g.Tasks != benchTasksPerGroup || g.NextRun == nil || g.Month.Requests == 0 || g.Today.Requests == 0 {
		b.Fatalf("group %s lacks some of what the store holds: %+v", g.Folder, g)
	}
	if wantGroups == 1 && len(rep.Trace) == 0 {
		b.Fatalf("group %s has no trace", g.Folder)
	}
}
