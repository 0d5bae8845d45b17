// Package queue decides when each group's work runs: one run at a time per
// group, at most N runs at once across all groups, and waiting groups served
// in the order they asked, so a busy group cannot starve the others.
//
// The queue does not know what the work is. It calls the worker with a
// group's name; the worker takes everything pending for that group (and
// keeps taking new work while its container is warm) and returns when done.
package queue

import (
	"context"
	"slices"
	"sync"
)

// Worker processes a group's pending work. It is never called twice at once
// for the same group. slot tells it when other groups are waiting for a
// place, so a warm but idle container can make room early.
type Worker func(ctx context.Context, group string, slot *Slot)

// Slot is a worker's place in the queue.
type Slot struct {
	q     *Queue
	group string
}

// Woken returns a channel closed when new work is notified for the slot's
// group after the last Taken: a warm worker takes it instead of returning.
func (s *Slot) Woken() <-chan struct{} {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	return s.q.wake[s.group]
}

// Contended returns a channel closed the next time a group starts waiting
// for a place (or already closed if one is waiting now): a warm but idle
// worker makes room when it is.
func (s *Slot) Contended() <-chan struct{} {
	s.q.mu.Lock()
	defer s.q.mu.Unlock()
	if len(s.q.order) > 0 {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return s.q.contended
}

// Queue schedules group workers under a global cap.
type Queue struct {
	max    int
	worker Worker

	mu        sync.Mutex
	ctx       context.Context
	running   map[string]bool          // groups whose worker runs now
	again     map[string]bool          // groups that got work while their worker ran
	wake      map[string]chan struct{} // per running group: closed by Notify
	order     []string                 // groups waiting for a place, oldest first
	contended chan struct{}            // closed when order becomes non-empty
	wg        sync.WaitGroup
}

// New makes a queue running at most limit workers at once (at least one).
func New(limit int, worker Worker) *Queue {
	return &Queue{
		max:       max(limit, 1),
		worker:    worker,
		running:   make(map[string]bool),
		again:     make(map[string]bool),
		wake:      make(map[string]chan struct{}),
		contended: make(chan struct{}),
	}
}

// Run lets the queue start workers until ctx ends, then waits for the
// running ones to return.
func (q *Queue) Run(ctx context.Context) {
	q.mu.Lock()
	q.ctx = ctx
	q.fill()
	q.mu.Unlock()
	<-ctx.Done()
	q.wg.Wait()
}

// Notify says that group has work. If its worker is running, the worker
// is called again after it returns (unless it took the work itself); if
// not, the group runs now or waits its turn.
func (q *Queue) Notify(group string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running[group] {
		if !q.again[group] {
			close(q.wake[group])
		}
		q.again[group] = true
		return
	}
	q.enqueue(group)
	q.fill()
}

func (q *Queue) enqueue(group string) {
	if slices.Contains(q.order, group) {
		return
	}
	q.order = append(q.order, group)
	if len(q.order) == 1 {
		close(q.contended)
	}
}

// fill starts waiting groups while there is room. Called with q.mu held.
func (q *Queue) fill() {
	if q.ctx == nil || q.ctx.Err() != nil {
		return
	}
	for len(q.running) < q.max && len(q.order) > 0 {
		group := q.order[0]
		q.order = q.order[1:]
		if len(q.order) == 0 {
			q.contended = make(chan struct{})
		}
		q.running[group] = true
		q.wake[group] = make(chan struct{})
		q.wg.Add(1)
		go q.work(group)
	}
}

func (q *Queue) work(group string) {
	defer q.wg.Done()
	q.worker(q.ctx, group, &Slot{q: q, group: group})
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.running, group)
	delete(q.wake, group)
	if q.again[group] {
		delete(q.again, group)
		q.enqueue(group) // at the back: the groups already waiting go first
	}
	q.fill()
}

// Taken tells the queue that a running worker is about to read all of its
// group's pending work, so the Notify calls before now need no extra run.
// Call it before reading, never after: a Notify that lands between the read
// and Taken would be lost.
func (q *Queue) Taken(group string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.again[group] {
		delete(q.again, group)
		q.wake[group] = make(chan struct{})
	}
}
