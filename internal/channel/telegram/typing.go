package telegram

import (
	"context"
	"fmt"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
)

// typingRenewal is how often "typing…" is sent again while shown: Telegram
// shows a chat action for 5 s, or until the bot's next message arrives.
const typingRenewal = 4 * time.Second

// typer is the goroutine that keeps "typing…" shown in one chat.
type typer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// SetTyping shows or clears "typing…" in a chat. Shown, it stays: it is
// sent again every typingRenewal until SetTyping(false) or Close, by one
// goroutine per chat however often it is shown. Telegram has no call to
// clear it: cleared, it is no longer renewed and lapses within 5 s (at
// once when a message arrives).
func (c *Channel) SetTyping(ctx context.Context, jid string, typing bool) error {
	chat, err := parseChat(jid)
	if err != nil {
		return fmt.Errorf("telegram typing: %w", err)
	}
	if !typing {
		c.stopTyping(jid)
		return nil
	}
	a, err := c.usable()
	if err != nil {
		return fmt.Errorf("telegram typing in %s: %w", jid, err)
	}
	if err := a.chatAction(ctx, chat); err != nil {
		return fmt.Errorf("telegram typing in %s: %w", jid, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.typing[jid]; ok || c.closed {
		return nil
	}
	if c.typing == nil {
		c.typing = make(map[string]*typer)
	}
	tctx, cancel := context.WithCancel(c.life)
	t := &typer{cancel: cancel, done: make(chan struct{})}
	c.typing[jid] = t
	// Started under mu, so Close (which sets closed under mu first) waits
	// for it.
	c.wg.Go(func() {
		defer close(t.done)
		tick := time.NewTicker(c.typingEvery)
		defer tick.Stop()
		for {
			select {
			case <-tctx.Done():
				return
			case <-tick.C:
				if err := a.chatAction(tctx, chat); err != nil && tctx.Err() == nil {
					c.log.Debug("could not renew Telegram typing indicator", "chat", jid, "err", err)
				}
			}
		}
	})
	return nil
}

// chatAction shows "typing…" once. It is not retried: the next renewal is
// only seconds away.
func (a *api) chatAction(ctx context.Context, chat int64) error {
	ctx, cancel := context.WithTimeout(ctx, typingRenewal)
	defer cancel()
	_, err := a.b.SendChatAction(ctx, &bot.SendChatActionParams{ChatID: chat, Action: models.ChatActionTyping})
	if err != nil {
		return fmt.Errorf("sendChatAction: %s", a.redact(err.Error()))
	}
	return nil
}

// stopTyping ends chat jid's renewal and waits for it, so that no renewal
// arrives after SetTyping(false) returned.
func (c *Channel) stopTyping(jid string) {
	c.mu.Lock()
	t := c.typing[jid]
	delete(c.typing, jid)
	c.mu.Unlock()
	if t != nil {
		t.cancel()
		<-t.done
	}
}
