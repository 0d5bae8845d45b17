package queue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestCapAndOneWorkerPerGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit, groups, notifies = 3, 10, 100
		var (
			mu      sync.Mutex
			active  = map[string]bool{}
			now     int
			peak    int
			handled atomic.Int64
		)
		q := New(limit, func(ctx context.Context, g string, _ *Slot) {
			mu.Lock()
			if active[g] {
				t.Errorf("two workers at once for %s", g)
			}
			active[g] = true
			now++
			peak = max(peak, now)
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			handled.Add(1)
			mu.Lock()
			active[g] = false
			now--
			mu.Unlock()
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { q.Run(ctx); close(done) }()
		var wg sync.WaitGroup
		for i := range notifies {
			wg.Add(1)
			go func() { defer wg.Done(); q.Notify(fmt.Sprintf("g%d", i%groups)) }()
		}
		wg.Wait()
		time.Sleep(time.Second) // 100 runs of 2 ms, three at a time
		synctest.Wait()
		mu.Lock()
		running := now
		mu.Unlock()
		if running != 0 {
			t.Fatalf("%d workers still running", running)
		}
		cancel()
		<-done
		if peak > limit {
			t.Errorf("peak %d over the cap %d", peak, limit)
		}
		if peak < 2 {
			t.Errorf("peak %d: groups did not run in parallel", peak)
		}
		if handled.Load() < groups {
			t.Errorf("only %d runs for %d groups", handled.Load(), groups)
		}
	})
}

func TestFairOrderAndRerun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var order []string
		var running atomic.Int64
		release := make(chan struct{})
		q := New(1, func(ctx context.Context, g string, _ *Slot) {
			running.Add(1)
			defer running.Add(-1)
			mu.Lock()
			order = append(order, g)
			first := len(order) == 1
			mu.Unlock()
			if first {
				<-release
			}
		})
		go q.Run(t.Context())
		q.Notify("a")
		synctest.Wait() // a runs
		q.Notify("b")
		q.Notify("a") // more work for the running group: it goes after b and c
		q.Notify("c")
		q.Notify("b") // already waiting: not queued twice
		close(release)
		synctest.Wait()
		if fmt.Sprint(order) != "[a b c a]" || running.Load() != 0 {
			t.Errorf("order %v with %d still running, want [a b c a] all done", order, running.Load())
		}
	})
}

func TestTakenAvoidsARerun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int64
		gate := make(chan struct{})
		var q *Queue
		q = New(2, func(ctx context.Context, g string, _ *Slot) {
			runs.Add(1)
			<-gate
			q.Taken(g) // the worker reads everything pending now
		})
		go q.Run(t.Context())
		q.Notify("a")
		synctest.Wait() // a runs
		q.Notify("a")
		close(gate)
		synctest.Wait()
		if runs.Load() != 1 {
			t.Errorf("%d runs, want 1: the worker took the work", runs.Load())
		}
	})
}

func TestSlotSignalsContention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		got := make(chan bool, 1)
		q := New(1, func(ctx context.Context, g string, s *Slot) {
			if g != "warm" {
				return
			}
			select {
			case <-s.Contended():
				got <- true
			case <-time.After(5 * time.Second):
				got <- false
			}
		})
		go q.Run(t.Context())
		q.Notify("warm")
		synctest.Wait() // warm runs
		select {
		case <-got:
			t.Fatal("a warm worker was told of contention while no other group waits")
		default:
		}
		q.Notify("other")
		if !<-got {
			t.Error("a warm worker was not told that another group waits")
		}
	})
}

func TestWokenWhileWarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var q *Queue
		var running atomic.Int64
		rounds := make(chan int, 10)
		// gate holds a woken worker before its Taken, so both Notify calls
		// below land before it takes the work (one may otherwise come after
		// Taken and rightly cause a third round).
		gate := make(chan struct{})
		q = New(1, func(ctx context.Context, g string, s *Slot) {
			running.Add(1)
			defer running.Add(-1)
			n := 0
			for {
				q.Taken(g)
				n++
				rounds <- n
				select {
				case <-s.Woken():
					select {
					case <-gate:
					case <-ctx.Done():
						return
					}
				case <-time.After(200 * time.Millisecond):
					return // idle
				}
			}
		})
		go q.Run(t.Context())
		q.Notify("g")
		if n := <-rounds; n != 1 {
			t.Fatalf("first round %d", n)
		}
		q.Notify("g") // while warm: the same worker takes it
		q.Notify("g") // coalesced with the one before
		gate <- struct{}{}
		if n := <-rounds; n != 2 {
			t.Fatalf("second round %d, want 2 (same worker)", n)
		}
		time.Sleep(200 * time.Millisecond) // the worker idles out
		synctest.Wait()
		if n := running.Load(); n != 0 {
			t.Fatalf("%d workers still running", n)
		}
		select {
		case n := <-rounds:
			t.Errorf("an extra round %d ran after the worker took the work", n)
		default:
		}
	})
}
