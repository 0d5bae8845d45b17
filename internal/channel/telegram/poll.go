package telegram

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/go-telegram/bot/models"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// allowedUpdates are the updates the bot asks for: messages, and its own
// membership (being added to a group announces the group). Edits, channel
// posts, reactions and the rest are not fetched at all.
var allowedUpdates = []string{models.AllowedUpdateMessage, models.AllowedUpdateMyChatMember}

// poll fetches updates from offset until ctx ends or Telegram refuses the
// token. Each update is handled — a message stored — before the next
// getUpdates asks for an offset past it, which is when Telegram forgets
// it (durable before acknowledged); the offset is kept in the store after
// each update, so a restart resumes there.
func (c *Channel) poll(ctx context.Context, a *api, offset int64) {
	backoff := minBackoff
	down := false
	for ctx.Err() == nil {
		asked := time.Now()
		res, retryAfter, err := a.updates(ctx, offset, pollSeconds, allowedUpdates)
		if err == nil && len(res.updates)+len(res.skipped) == 0 && time.Since(asked) < time.Second {
			// An empty answer at once, not after the long poll: a server
			// that does not hold the poll must not be asked in a loop.
			if a.sleep(ctx, time.Second-time.Since(asked)) != nil {
				return
			}
		}
		if err == nil {
			if down {
				c.log.Info("reconnected to Telegram")
				down = false
				c.setConnected(true)
			}
			backoff = minBackoff
			if offset, err = c.deliver(ctx, res, offset); err == nil {
				continue
			}
			// A message was not stored: fetched again, after a pause.
			c.log.Error("could not store a Telegram message; fetching it again", "err", err)
			if a.sleep(ctx, backoff) != nil {
				return
			}
			backoff = min(backoff*2, maxBackoff)
			continue
		}
		if ctx.Err() != nil {
			return
		}
		var e *apiError
		wait := backoff
		switch {
		case errors.Is(err, errRevoked):
			c.fail(ErrRevoked)
			return
		case retryAfter > 0:
			wait = min(retryAfter, maxRetryAfter)
		case errors.As(err, &e) && e.status == http.StatusConflict:
			c.log.Error("another program fetches this bot's updates (a second nanoclaw on this token, or a webhook): stop it; retrying", "err", err)
			backoff = min(backoff*2, maxBackoff)
		default:
			backoff = min(backoff*2, maxBackoff)
		}
		if !down {
			c.log.Warn("lost the connection to Telegram; reconnecting", "err", err)
			down = true
			c.setConnected(false)
		}
		if a.sleep(ctx, wait) != nil {
			return
		}
	}
}

// deliver handles the updates of one poll in order and returns the offset
// past the last one handled; it stops at the first message that could not
// be stored.
func (c *Channel) deliver(ctx context.Context, res pollResult, offset int64) (int64, error) {
	type item struct {
		id int64
		u  *models.Update // nil: skipped, undecodable
	}
	items := make([]item, 0, len(res.updates)+len(res.skipped))
	for _, u := range res.updates {
		items = append(items, item{u.ID, u})
	}
	for _, id := range res.skipped {
		items = append(items, item{id, nil})
	}
	slices.SortFunc(items, func(a, b item) int { return int(min(max(a.id-b.id, -1), 1)) })
	for _, it := range items {
		reset := it.id < offset
		if reset {
			// Telegram confirms only what is below the offset asked for, so
			// an update it sends is unconfirmed, whatever its id: its ids
			// started again lower (it does after a week without updates).
			// Handled, and the offset follows them down.
			c.log.Warn("Telegram's update ids started again lower; following them", "update", it.id, "offset", offset)
		}
		if it.u == nil {
			c.log.Warn("skipped a Telegram update this version cannot read", "update", it.id)
		} else if err := c.handle(ctx, it.u); err != nil {
			return offset, err
		}
		offset = it.id + 1
		keep := c.st.SetTelegramOffset
		if reset {
			keep = c.st.ResetTelegramOffset
		}
		if err := keep(ctx, offset); err != nil && ctx.Err() == nil {
			// The message is stored; at worst a restart fetches it again,
			// and the store ignores it then.
			c.log.Warn("could not keep the Telegram update offset", "offset", offset, "err", err)
		}
	}
	return offset, nil
}

// handle hands one update to the handler: a message to store, a chat to
// announce.
func (c *Channel) handle(ctx context.Context, u *models.Update) error {
	c.mu.Lock()
	h, self, a := c.handler, c.self, c.api
	c.mu.Unlock()
	if err := c.migrated(ctx, u.Message); err != nil {
		return err
	}
	m, info, ok := convert(u, self, a.fetcher)
	if info.JID != "" {
		c.onChat(info)
	}
	if !ok {
		return nil
	}
	if _, err := h.OnMessage(ctx, c, m); err != nil {
		return err
	}
	return nil
}

// migrated binds a group to the new id when msg says its Telegram group
// became a supergroup (the old id takes no more messages): the service
// message in the old chat, so only the registered chat itself moves its
// registration. Its tasks and unsent replies follow, and what the old chat
// holds unanswered is answered at the new id (store.MoveChat, sendsMoved).
func (c *Channel) migrated(ctx context.Context, msg *models.Message) error {
	if msg == nil || msg.MigrateToChatID == 0 || msg.Chat.Type != models.ChatTypeGroup || msg.MigrateToChatID == msg.Chat.ID {
		return nil
	}
	from, to := chatID(msg.Chat.ID), chatID(msg.MigrateToChatID)
	folder, err := c.st.MoveChat(ctx, from, to)
	switch {
	case errors.Is(err, store.ErrBoundElsewhere):
		c.log.Error("a Telegram group became a supergroup whose new id is registered to another group; its registration stays with the old id, which takes no more messages",
			"from", from, "to", to, "err", err)
	case err != nil:
		return err // the update comes again
	case folder != "":
		c.log.Warn("a Telegram group became a supergroup: the group is reached at its new id", "group", folder, "from", from, "to", to)
	}
	return nil
}

// pollPause is how long Pair waits between polls that fail.
const pollPause = 2 * time.Second
