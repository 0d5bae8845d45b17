package local

import (
	"fmt"
	"time"
)

// SubscriberBuffer is how many events a subscriber may fall behind before it
// is cut off.
const SubscriberBuffer = 256

// Event types.
const (
	EventStored = "stored" // a message was stored (Deliver)
	EventReply  = "reply"  // the assistant sent text (Send)
	EventTyping = "typing" // typing started or stopped (SetTyping)
	EventDone   = "done"   // a run for the chat ended (Observer.RunDone)
	// EventFile: the assistant sent a file (SendFile); it is at Path.
	EventFile = "file"
	// EventReaction: the assistant reacted to message ID (React).
	EventReaction = "reaction"
	// EventLagged is the last event of a subscriber that fell behind: its
	// channel is closed right after it.
	EventLagged = "lagged"
)

// Event is one thing that happened in a local chat. Fields that do not apply
// to the type are left out of the JSON (absent means zero or false).
type Event struct {
	Type string `json:"type"`
	Chat string `json:"chat"`
	// ID is the stored message's id (stored), the reply's or file's id
	// (reply, file), or the id of the message reacted to (reaction).
	ID string `json:"id,omitempty"`
	// Seq is the stored message's position in the chat (stored).
	Seq int64 `json:"seq,omitempty"`
	// WillAnswer says whether the stored message starts a run (stored).
	WillAnswer bool `json:"will_answer,omitempty"`
	// Taken is what the host told the chat when it took the stored
	// message itself (the owner's answer to an egress question; stored).
	Taken string `json:"taken,omitempty"`
	// Duplicate marks a stored event for a message whose id was stored
	// before, so nothing new was stored (only in control streams: the
	// channel itself publishes no event then).
	Duplicate bool `json:"duplicate,omitempty"`
	// UpTo is the position the run answered up to (done).
	UpTo int64 `json:"up_to,omitempty"`
	// Text is the reply's text, as sent (reply), or the file's caption
	// (file).
	Text string `json:"text,omitempty"`
	// ReplyTo is the id of the message the reply quotes (reply).
	ReplyTo string `json:"reply_to,omitempty"`
	// Name is the file's cleaned base name (CleanFileName), MIME its type,
	// Kind its channel.MediaKind, Bytes its size, and Path where the
	// daemon wrote it, in its host-only FilesDir (file).
	Name  string `json:"name,omitempty"`
	MIME  string `json:"mime,omitempty"`
	Kind  string `json:"kind,omitempty"`
	Bytes int64  `json:"bytes,omitempty"`
	Path  string `json:"path,omitempty"`
	// Emoji is the reaction; "" removes it (reaction).
	Emoji string `json:"emoji,omitempty"`
	// Typing says whether typing started or stopped (typing).
	Typing bool `json:"typing,omitempty"`
	// Error is why the run failed (done), or why the stream ends (lagged).
	Error string    `json:"error,omitempty"`
	Time  time.Time `json:"time"`
}

// Covers reports whether done event e ends the wait for the message at
// position seq: a run that answered up to it or past it, or a failed run
// that could not say what it covered (UpTo 0).
func (e Event) Covers(seq int64) bool {
	return e.Type == EventDone && (e.UpTo >= seq || e.Error != "" && e.UpTo == 0)
}

// Subscribe returns the events of chat jid from now on, and cancel, which
// ends the subscription and closes the channel (calling it again is
// harmless). A subscriber that lets SubscriberBuffer events pile up is cut
// off rather than allowed to slow the host down: it receives a final
// EventLagged and its channel is closed. After Close, the channel returned is
// already closed.
func (c *Channel) Subscribe(jid string) (<-chan Event, func()) {
	// One slot more than the buffer, kept free for the lagged event.
	ch := make(chan Event, SubscriberBuffer+1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		close(ch)
		return ch, func() {}
	}
	if c.subs[jid] == nil {
		c.subs[jid] = make(map[chan Event]struct{})
	}
	c.subs[jid][ch] = struct{}{}
	return ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.remove(jid, ch)
	}
}

// Subscribers counts the current subscribers of chat jid.
func (c *Channel) Subscribers(jid string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs[jid])
}

// remove ends subscription s if it is still live; c.mu is held.
func (c *Channel) remove(jid string, ch chan Event) {
	set := c.subs[jid]
	if _, ok := set[ch]; !ok {
		return
	}
	delete(set, ch)
	if len(set) == 0 {
		delete(c.subs, jid)
	}
	close(ch)
}

// publish hands ev to every subscriber of its chat without blocking and
// returns how many got it. Sends happen under c.mu, and only publish sends,
// so a buffer seen with a free slot still has it when the send happens.
func (c *Channel) publish(ev Event) int {
	ev.Time = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for ch := range c.subs[ev.Chat] {
		if len(ch) >= SubscriberBuffer {
			ch <- Event{Type: EventLagged, Chat: ev.Chat, Time: ev.Time,
				Error: fmt.Sprintf("fell more than %d events behind; the event stream was closed", SubscriberBuffer)}
			c.remove(ev.Chat, ch)
			c.log.Warn("local event subscriber fell behind; cut off", "chat", ev.Chat)
			continue
		}
		ch <- ev
		n++
	}
	return n
}
