package queue

import "slices"

// Load returns how many workers run, the cap, and the groups waiting for a
// place, oldest first.
func (q *Queue) Load() (running, limit int, waiting []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.running), q.max, slices.Clone(q.order)
}
