package whatsapp

import (
	"sync"

	"go.mau.fi/whatsmeow/types"
)

// maxRecentSenders is how many received messages' senders are remembered
// for reactions and quotes: the messages the assistant reacts to and quotes
// are the ones that just started a run.
const maxRecentSenders = 2048

// recentSenders remembers, for the latest messages received, their sender's
// address exactly as WhatsApp gave it. The store keeps the canonical id
// (the phone number where known), but a reaction or a quote names the
// message by its key, and in a group that addresses its members by LID the
// key's participant is the LID: a key with the phone number instead may
// not find the message on the members' phones. It forgets the oldest first.
type recentSenders struct {
	mu    sync.Mutex
	m     map[recentKey]types.JID
	order []recentKey // a ring of the keys in m, oldest at next
	next  int
}

type recentKey struct{ chat, id string }

// remember notes the raw sender of message id of chat (the canonical chat id).
func (r *recentSenders) remember(chat, id string, sender types.JID) {
	if id == "" || sender.IsEmpty() {
		return
	}
	k := recentKey{chat, id}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[recentKey]types.JID, maxRecentSenders)
	}
	if _, ok := r.m[k]; ok {
		r.m[k] = sender
		return
	}
	if len(r.order) < maxRecentSenders {
		r.order = append(r.order, k)
	} else {
		delete(r.m, r.order[r.next])
		r.order[r.next] = k
		r.next = (r.next + 1) % maxRecentSenders
	}
	r.m[k] = sender
}

// sender returns the raw sender of message id of chat, if remembered.
func (r *recentSenders) sender(chat, id string) (types.JID, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j, ok := r.m[recentKey{chat, id}]
	return j, ok
}
