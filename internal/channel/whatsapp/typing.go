package whatsapp

import (
	"context"
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/types"
)

// typingRenewal is how often "typing…" is sent again while shown: WhatsApp's
// apps stop showing it some seconds after the last one (about 10 s on
// current phones), and a run takes minutes.
const typingRenewal = 8 * time.Second

// typer is the goroutine that keeps "typing…" shown in one chat.
type typer struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// SetTyping shows or clears "typing…" in a chat. Shown, it stays: it is
// sent again every typingRenewal until SetTyping(false) or Close, by one
// goroutine per chat however often it is shown.
func (c *Channel) SetTyping(ctx context.Context, jid string, typing bool) error {
	to, err := ParseChatJID(jid)
	if err != nil {
		return fmt.Errorf("whatsapp typing: %w", err)
	}
	if !typing {
		c.stopTyping(jid)
		if err := c.usable(); err != nil {
			return fmt.Errorf("whatsapp typing in %s: %w", jid, err)
		}
		if err := c.presence(ctx, to, types.ChatPresencePaused); err != nil {
			return fmt.Errorf("whatsapp typing in %s: %w", jid, err)
		}
		return nil
	}
	if err := c.usable(); err != nil {
		return fmt.Errorf("whatsapp typing in %s: %w", jid, err)
	}
	if err := c.presence(ctx, to, types.ChatPresenceComposing); err != nil {
		return fmt.Errorf("whatsapp typing in %s: %w", jid, err)
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
		c.keepTyping(tctx, to)
	})
	return nil
}

// keepTyping sends "typing…" to chat to every typingRenewal until ctx ends.
func (c *Channel) keepTyping(ctx context.Context, to types.JID) {
	tick := time.NewTicker(typingRenewal)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := c.presence(ctx, to, types.ChatPresenceComposing); err != nil && ctx.Err() == nil {
				c.log.Debug("could not renew WhatsApp typing indicator", "chat", to.String(), "err", err)
			}
		}
	}
}

// stopTyping ends chat jid's renewal and waits for it, so that no renewal
// can arrive after the "paused" that follows.
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
