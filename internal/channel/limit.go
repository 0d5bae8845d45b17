package channel

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Default send limit of a chat (R9): enough for an answer, a few progress
// notes and the owner's own traffic, far below what gets an account banned.
const (
	DefaultSendsPerMinute = 20
	DefaultSendBurst      = 5
)

// SendLimit paces the messages sent to each chat (R9): a chat may receive
// Burst messages at once, then one every minute/PerMinute. Channels whose
// service punishes floods (WhatsApp) take every send through it, so the
// assistant's replies, its send_message calls and its scheduled tasks share
// one budget per chat. It is safe for concurrent use.
//
// It is a GCRA token bucket: per chat only the time at which the bucket
// would be full again is kept.
type SendLimit struct {
	perMinute, burst int
	every            time.Duration // one message per
	tolerance        time.Duration // how far ahead of the pace a burst may run

	mu    sync.Mutex
	chats map[string]time.Time // chat → when its pace is caught up ("theoretical arrival time")
}

// NewSendLimit makes a limit of perMinute messages a minute per chat, burst
// at once; values below 1 mean the defaults.
func NewSendLimit(perMinute, burst int) *SendLimit {
	if perMinute < 1 {
		perMinute = DefaultSendsPerMinute
	}
	if burst < 1 {
		burst = DefaultSendBurst
	}
	every := time.Minute / time.Duration(perMinute)
	return &SendLimit{perMinute: perMinute, burst: burst, every: every,
		tolerance: time.Duration(burst-1) * every, chats: make(map[string]time.Time)}
}

// String describes the limit for people: "20 messages a minute, 5 at once".
func (l *SendLimit) String() string {
	return fmt.Sprintf("%d messages a minute, %d at once", l.perMinute, l.burst)
}

// RateLimitError reports a send the chat's limit does not allow now.
type RateLimitError struct {
	Chat  string
	Limit string        // the limit, as SendLimit.String says it
	Wait  time.Duration // until one message may go
}

func (e *RateLimitError) Error() string {
	wait := (e.Wait + time.Second - 1).Truncate(time.Second) // rounded up, so it is never too short
	return fmt.Sprintf("the send limit of chat %s (%s) is reached: wait %s before sending again",
		e.Chat, e.Limit, wait)
}

// delay is how long a message to chat must wait at now; take says whether
// it also counts against the budget, as sent at now+delay.
func (l *SendLimit) delay(chat string, now time.Time, take bool) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	tat := l.chats[chat]
	if tat.Before(now) {
		tat = now
	}
	wait := max(tat.Sub(now)-l.tolerance, 0)
	if take {
		if len(l.chats) >= 4096 {
			l.forget(now)
		}
		l.chats[chat] = tat.Add(l.every)
	}
	return wait
}

// forget drops the chats whose budget is whole again; l.mu is held.
func (l *SendLimit) forget(now time.Time) {
	for chat, tat := range l.chats {
		if !tat.After(now) {
			delete(l.chats, chat)
		}
	}
}

// Check reports, without using the budget, whether a message to chat may go
// now: nil, or a *RateLimitError saying how long to wait.
func (l *SendLimit) Check(chat string) error {
	if d := l.delay(chat, time.Now(), false); d > 0 {
		return &RateLimitError{Chat: chat, Limit: l.String(), Wait: d}
	}
	return nil
}

// Wait takes one message's place in chat's budget and returns when it may
// be sent, or with ctx's error when ctx ends first (the place is not given
// back: the budget errs on the side of sending less).
func (l *SendLimit) Wait(ctx context.Context, chat string) error {
	d := l.delay(chat, time.Now(), true)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Limited is implemented by channels that pace their sends with a SendLimit
// (R9), so a caller can refuse a message instead of waiting for its turn.
type Limited interface {
	// CheckSend reports, without using the budget, whether a message to
	// chat jid may go now: nil, or a *RateLimitError.
	CheckSend(jid string) error
}
