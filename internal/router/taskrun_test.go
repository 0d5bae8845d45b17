package router

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/scheduler"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/tools"
)

// slowAgents answers every prompt after a fixed time and counts how many
// prompts run at once.
type slowAgents struct {
	took time.Duration

	mu        sync.Mutex
	running   int
	maxAtOnce int
	prompts   []string
}

func (a *slowAgents) Start(ctx context.Context, g store.Group, opt agent.StartOptions) (Container, error) {
	return &slowSession{a: a, done: make(chan struct{})}, nil
}

type slowSession struct {
	a    *slowAgents
	done chan struct{}
	once sync.Once
}

func (s *slowSession) Prompt(ctx context.Context, text string) (ipc.Output, error) {
	s.a.mu.Lock()
	s.a.running++
	s.a.maxAtOnce = max(s.a.maxAtOnce, s.a.running)
	s.a.prompts = append(s.a.prompts, text)
	s.a.mu.Unlock()
	defer func() {
		s.a.mu.Lock()
		s.a.running--
		s.a.mu.Unlock()
	}()
	select {
	case <-time.After(s.a.took):
		return ipc.Output{Result: "ok"}, nil
	case <-ctx.Done():
		return ipc.Output{}, ctx.Err()
	}
}
func (s *slowSession) Done() <-chan struct{}     { return s.done }
func (s *slowSession) Close(ctx context.Context) { s.once.Do(func() { close(s.done) }) }

// recordFunc is a RunRecorder made of a function.
type recordFunc func(ctx context.Context, t store.Task, start time.Time, result string, err error) error

func (f recordFunc) RecordRun(ctx context.Context, t store.Task, start time.Time, result string, err error) error {
	return f(ctx, t, start, result, err)
}

func (a *slowAgents) count() (prompts, maxAtOnce int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.prompts), a.maxAtOnce
}

// R16, the case in fake time: a task every 50 ms whose runs take
// 250 ms, one container at a time. Before the fix the engine claimed it at
// every due time and the router queued every copy (40 in 2 s), copies ran on
// after cancel_task, and the owner's message waited behind them.
func TestSlowTaskRunsOneCopyAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st, err := store.Open(ctx, t.TempDir()+"/db", store.Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		st.PutGroup(ctx, store.Group{Folder: "main", Name: "Main", Trigger: "@Andy", IsMain: true, AddedAt: time.Now()})
		st.BindChat(ctx, "local:main", "main")
		start := time.Now()
		due := start.Add(50 * time.Millisecond)
		// Stored directly: the tools would refuse an interval this short.
		if err := st.CreateTaskWithin(ctx, store.Task{ID: "busy", Folder: "main", ChatJID: "local:main", Prompt: "work hard",
			ScheduleType: store.ScheduleInterval, ScheduleValue: "50", Timezone: "UTC", ContextMode: store.ContextIsolated,
			Status: store.TaskActive, NextRun: &due, CreatedAt: start}, store.TaskCaps{}); err != nil {
			t.Fatal(err)
		}

		agents := &slowAgents{took: 250 * time.Millisecond}
		engine := scheduler.New(scheduler.Options{Store: st, Logger: slog.New(slog.DiscardHandler)})
		ch, chats := &fakeChannel{}, NewChannels(st, "Andy", nil)
		chats.Add(ch)
		r := New(Options{Store: st, Agents: agents, AssistantName: "Andy", MaxConcurrent: 1, IdleTimeout: time.Millisecond,
			Caps: Caps{MaxMessages: 50, MaxBytes: 32 << 10, MaxMessageBytes: 4096}, Channels: chats, Runs: engine,
			Logger: slog.New(slog.DiscardHandler)})
		runCtx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { r.Run(runCtx) })
		wg.Go(func() { engine.Run(runCtx, r.RunTask) })
		defer func() { stop(); wg.Wait() }()

		time.Sleep(2 * time.Second)
		synctest.Wait()
		prompts, atOnce := agents.count()
		if atOnce != 1 {
			t.Errorf("%d runs of the task at once, want 1", atOnce)
		}
		// 2 s of 250 ms runs: 8 at most, whatever the interval.
		if prompts < 6 || prompts > 8 {
			t.Errorf("%d runs started in 2 s of 250 ms runs, want 6 to 8", prompts)
		}
		runs, _ := st.TaskRuns(ctx, "busy", 0)
		count := map[store.RunStatus]int{}
		for _, run := range runs {
			count[run.Status]++
		}
		if count[store.RunSkipped] < 20 || count[store.RunError] != 0 {
			t.Errorf("run log %v: want the due times passed while a run was pending logged as skipped, no errors", count)
		}

		// The owner's message is answered after the run in progress, not
		// after a backlog of copies.
		said := time.Now()
		r.OnMessage(ctx, ch, channel.Message{ChatJID: "local:main", ID: "m1", Sender: "me", SenderName: "Me", Text: "hello", Timestamp: said})
		for {
			if len(ch.Texts()) > 0 {
				break
			}
			if time.Since(said) > 2*time.Second {
				t.Fatal("the message was not answered within 2 s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if waited := time.Since(said); waited > 600*time.Millisecond {
			t.Errorf("the owner's message waited %v behind the task, want at most one run and its own (500 ms)", waited)
		}

		// Main cancels the task: nothing of it runs afterwards.
		raw, _ := json.Marshal(ipc.TaskIDArgs{TaskID: "busy"})
		if _, err := tools.New(tools.Options{Store: st, Chats: NewChannels(st, "", nil), TasksChanged: engine.Changed}).Call(ctx, gateway.Caller{Folder: "main", IsMain: true}, "cancel_task", raw); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond) // a run already in its container ends
		synctest.Wait()
		before, _ := agents.count()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if after, _ := agents.count(); after != before {
			t.Errorf("%d runs started after cancel_task, want none", after-before)
		}
		if task, _, _ := st.GetTask(ctx, "busy"); task.ClaimedAt != nil {
			t.Errorf("the cancelled task still holds a claim from %v", task.ClaimedAt)
		}
	})
}

// R16: a run claimed before the task was paused or cancelled does not start
// when its turn comes; it is logged as skipped and the claim ends.
func TestClaimedTaskStoppedBeforeItsTurnDoesNotRun(t *testing.T) {
	for _, tool := range []string{"pause_task", "cancel_task"} {
		t.Run(tool, func(t *testing.T) {
			ctx := context.Background()
			w := newRouterWorld(t, time.Minute)
			now := time.Now()
			due := now.Add(-time.Second)
			if err := w.st.CreateTaskWithin(ctx, store.Task{ID: "t1", Folder: "main", ChatJID: "local:main", Prompt: "p",
				ScheduleType: store.ScheduleInterval, ScheduleValue: "3600000", Timezone: "UTC", ContextMode: store.ContextGroup,
				Status: store.TaskActive, NextRun: &due, CreatedAt: now}, store.TaskCaps{}); err != nil {
				t.Fatal(err)
			}
			claimed, err := w.st.ClaimDue(ctx, now, 0, time.Hour, func(t store.Task) (*time.Time, error) { return scheduler.NextRun(t, now) })
			if err != nil || len(claimed) != 1 {
				t.Fatalf("claim: %v, %v", claimed, err)
			}
			raw, _ := json.Marshal(ipc.TaskIDArgs{TaskID: "t1"})
			if _, err := tools.New(tools.Options{Store: w.st, Chats: NewChannels(w.st, "", nil)}).Call(ctx, gateway.Caller{Folder: "main", IsMain: true}, tool, raw); err != nil {
				t.Fatal(err)
			}
			recorded := make(chan error, 1)
			w.r.opt.Runs = recordFunc(func(ctx context.Context, task store.Task, start time.Time, result string, err error) error {
				defer func() { recorded <- err }()
				return scheduler.New(scheduler.Options{Store: w.st}).RecordRun(ctx, task, start, result, err)
			})
			w.r.RunTask(claimed[0].Task)
			select {
			case err := <-recorded:
				if err == nil || !errors.Is(err, scheduler.ErrSkipped) {
					t.Fatalf("run recorded with %v, want skipped", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the claimed run was never recorded")
			}
			if n := w.agents.starts.Load(); n != 0 {
				t.Fatalf("%d agents started for a %s task", n, tool)
			}
			task, _, _ := w.st.GetTask(ctx, "t1")
			runs, _ := w.st.TaskRuns(ctx, "t1", 0)
			if task.ClaimedAt != nil || len(runs) != 1 || runs[0].Status != store.RunSkipped {
				t.Fatalf("after the skip: claim %v, runs %+v", task.ClaimedAt, runs)
			}
		})
	}
}
