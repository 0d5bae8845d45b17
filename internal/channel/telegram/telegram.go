// Package telegram is the Telegram channel: a channel.Channel for a bot on
// Telegram's Bot API (github.com/go-telegram/bot for the methods and
// models), fetching its updates by long polling, so no public endpoint is
// needed.
//
// The bot's session (token, who the bot is, the owner's user id and the
// update offset) lives in NanoClaw's database (store.TelegramSession).
// Pairing is done once by Pair (`nanoclaw pair telegram`): whoever sends
// the one-time code to the bot in a private chat is the owner, and that
// private chat is the one bound to main (Self).
//
// Durable before acknowledged: Telegram forgets an update once a
// getUpdates call asks for a later offset. The channel polls itself (see
// poll.go), hands each message to Handler.OnMessage, and asks for the next
// offset — and keeps it in the store — only after OnMessage returned. A
// message that could not be stored is fetched again; a restart resumes at
// the stored offset, and an update fetched twice carries the same chat and
// message id, which the store ignores.
//
// Chat ids are "tg:" and the Bot API's chat id ("tg:123456789" for a
// private chat, which is also its user's id; "tg:-100…" for a group);
// senders are "tg:" and their user id.
package telegram

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-telegram/bot/models"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// Name is the channel's short name.
const Name = "telegram"

// PairCommand is what the user runs to (re)pair a Telegram bot.
const PairCommand = "nanoclaw pair telegram"

// ErrNotPaired reports that no Telegram bot is paired yet.
var ErrNotPaired = errors.New("telegram is not paired: run '" + PairCommand + "' first")

// ErrRevoked reports that Telegram refused the bot's token (401): revoked
// with @BotFather, or wrong. The channel stops until paired again.
var ErrRevoked = errRevoked

// Options configures a Channel.
type Options struct {
	// Logger receives the channel's logs; nil means slog.Default().
	Logger *slog.Logger
	// SendLimit paces the messages sent to each chat (R9); nil means
	// channel's defaults, which are within Telegram's own (about one
	// message a second in a chat, twenty a minute in a group).
	SendLimit *channel.SendLimit
	// ServerURL is the Bot API's address; "" means DefaultServerURL.
	// Tests point it at faketelegram.
	ServerURL string
	// HTTPClient carries every call; nil means a client without an
	// overall timeout (each call has its own).
	HTTPClient *http.Client
}

// Channel is the Telegram bot's connection. Create it with New; it is safe
// for concurrent use.
type Channel struct {
	log   *slog.Logger
	st    *store.Store
	opts  Options
	limit *channel.SendLimit
	// html converts a part's Markdown (MarkdownToHTML); typingEvery is
	// typingRenewal: tests replace them.
	html        func(md string) (string, bool)
	typingEvery time.Duration
	// sleep, when set, replaces the API's waits between retries.
	sleep func(ctx context.Context, d time.Duration) error

	// life ends with Close; it bounds the poll loop, handlers and typing.
	life context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup

	mu        sync.Mutex
	api       *api // set by Connect
	self      identity
	handler   channel.Handler
	polling   bool                        // the poll loop runs
	connected bool                        // the last poll reached Telegram
	chats     map[string]channel.ChatInfo // the chats seen since Connect
	typing    map[string]*typer           // the chats "typing…" is kept shown in
	closed    bool
	fatal     error // the token was refused: the channel cannot go on
}

var (
	_ channel.Channel    = (*Channel)(nil)
	_ channel.Limited    = (*Channel)(nil)
	_ channel.FileSender = (*Channel)(nil)
	_ channel.Reactor    = (*Channel)(nil)
	_ channel.Quoter     = (*Channel)(nil)
)

// New makes the channel on st, NanoClaw's store, without connecting: a bot
// paired later is found by Connect. The caller keeps ownership of st and
// closes it after Close.
func New(ctx context.Context, st *store.Store, opts Options) (*Channel, error) {
	if st == nil {
		return nil, errors.New("telegram: nil store")
	}
	if _, _, err := st.TelegramSession(ctx); err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	life, stop := context.WithCancel(context.Background())
	return &Channel{
		log: cmp.Or(opts.Logger, slog.Default()).With("channel", Name), st: st, opts: opts,
		limit: cmp.Or(opts.SendLimit, channel.NewSendLimit(0, 0)),
		html:  MarkdownToHTML, typingEvery: typingRenewal,
		life: life, stop: stop,
	}, nil
}

// Name returns "telegram".
func (c *Channel) Name() string { return Name }

// Owns reports whether jid is a Telegram chat id, "tg:NUMBER".
func (c *Channel) Owns(jid string) bool {
	_, err := parseChat(jid)
	return err == nil
}

// parseChat is the Bot API's chat id of a "tg:NUMBER" chat id.
func parseChat(jid string) (int64, error) {
	if !strings.HasPrefix(jid, store.TelegramChatPrefix) {
		return 0, fmt.Errorf("%q is not a Telegram chat id (%sNUMBER)", jid, store.TelegramChatPrefix)
	}
	if err := store.ValidateChatID(jid); err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(jid[len(store.TelegramChatPrefix):], 10, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%q is not a Telegram chat id (%sNUMBER)", jid, store.TelegramChatPrefix)
	}
	return id, nil
}

// chatID is the channel's id of a Bot API chat or user id.
func chatID(id int64) string { return store.TelegramChatPrefix + strconv.FormatInt(id, 10) }

// Connect checks the paired bot's token with Telegram (getMe) and starts
// fetching its updates for h in the background. While Telegram cannot be
// reached it keeps trying until ctx ends. It returns ErrNotPaired when no
// bot is paired, and an error wrapping ErrRevoked when Telegram refuses
// the token. After a successful Connect, reconnection is the channel's
// own business; Connect may be called again after it failed.
func (c *Channel) Connect(ctx context.Context, h channel.Handler) error {
	if h == nil {
		return errors.New("telegram connect: nil handler")
	}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return errors.New("telegram connect: channel is closed")
	case c.polling:
		c.mu.Unlock()
		return errors.New("telegram connect: already connected")
	}
	c.mu.Unlock()

	sess, found, err := c.st.TelegramSession(ctx)
	if err != nil {
		return fmt.Errorf("telegram connect: %w", err)
	}
	if !found {
		return ErrNotPaired
	}
	a, err := newAPI(sess.Token, c.opts.ServerURL, c.opts.HTTPClient, c.log)
	if err != nil {
		return err
	}
	if c.sleep != nil {
		a.sleep = c.sleep
	}
	me, err := c.reach(ctx, a)
	if err != nil {
		return err
	}
	if me.ID != sess.BotID {
		return fmt.Errorf("the stored token is bot %d's, not the paired bot %d's: pair again with '%s'", me.ID, sess.BotID, PairCommand)
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.polling {
		return errors.New("telegram connect: closed or connected meanwhile")
	}
	c.api, c.handler, c.fatal = a, h, nil
	c.self = identity{bot: me.ID, username: strings.ToLower(me.Username), owner: sess.OwnerChat}
	c.polling, c.connected = true, true
	c.log.Info("connected to Telegram", "bot", "@"+me.Username, "owner_chat", chatID(sess.OwnerChat))
	// Started under mu, so Close waits for it.
	c.wg.Go(func() { c.poll(c.life, a, sess.Offset) })
	return nil
}

// reach asks Telegram who the bot is, again and again while the network
// fails, until ctx ends.
func (c *Channel) reach(ctx context.Context, a *api) (*models.User, error) {
	started := time.Now()
	for {
		me, err := a.getMe(ctx)
		var e *apiError
		switch {
		case err == nil:
			return me, nil
		case errors.Is(err, errRevoked):
			return nil, err
		case ctx.Err() != nil:
			return nil, fmt.Errorf("cannot reach Telegram: not connected after %s: %w", time.Since(started).Round(time.Second), ctx.Err())
		case errors.As(err, &e) && e.status != 0 && e.status < 500 && e.status != http.StatusTooManyRequests:
			return nil, fmt.Errorf("cannot connect to Telegram: %w", err)
		}
		c.log.Warn("cannot reach Telegram; trying again", "err", err)
		if err := a.sleep(ctx, maxBackoff); err != nil {
			return nil, fmt.Errorf("cannot reach Telegram: not connected after %s: %w", time.Since(started).Round(time.Second), err)
		}
	}
}

// fail stops the channel after Telegram refused the token.
func (c *Channel) fail(err error) {
	c.mu.Lock()
	c.connected = false
	if c.fatal == nil {
		c.fatal = err
	}
	c.mu.Unlock()
	c.log.Error("Telegram channel stopped", "err", err)
}

// setConnected records whether the last poll reached Telegram.
func (c *Channel) setConnected(up bool) {
	c.mu.Lock()
	c.connected = up
	c.mu.Unlock()
}

// usable returns the API to call, or why there is none.
func (c *Channel) usable() (*api, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, errors.New("channel is closed")
	case c.fatal != nil:
		return nil, c.fatal
	case c.api == nil:
		return nil, errors.New("not connected")
	}
	return c.api, nil
}

// onChat announces a chat the bot saw, once per name.
func (c *Channel) onChat(info channel.ChatInfo) {
	c.mu.Lock()
	h := c.handler
	old, seen := c.chats[info.JID]
	if c.chats == nil {
		c.chats = make(map[string]channel.ChatInfo)
	}
	if !seen || info.Name != "" {
		c.chats[info.JID] = info
	}
	c.mu.Unlock()
	if h == nil || (seen && (info.Name == "" || info.Name == old.Name)) {
		return
	}
	h.OnChat(c.life, c, info)
}

// Chats lists the chats the bot saw since Connect: the Bot API has no way
// to list the chats a bot is in, so groups appear once something happens
// in them (a message the bot sees, or the bot being added).
func (c *Channel) Chats(context.Context) ([]channel.ChatInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]channel.ChatInfo, 0, len(c.chats))
	for _, info := range c.chats {
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b channel.ChatInfo) int { return strings.Compare(a.JID, b.JID) })
	return out, nil
}

// Self returns the owner's private chat with the bot ("tg:123456789"), the
// chat bound to main, once connected; "" before, after the token was
// refused, and after Close.
func (c *Channel) Self() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.fatal != nil || c.api == nil {
		return ""
	}
	return chatID(c.self.owner)
}

// Connected reports whether the last call for updates reached Telegram.
func (c *Channel) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected && c.fatal == nil && !c.closed
}

// Close stops polling and typing and waits for them. It does not close the
// store.
func (c *Channel) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.connected = false
	c.mu.Unlock()
	c.stop()
	c.wg.Wait()
	return nil
}

// CheckSend reports whether a message to chat jid may go now under the
// chat's send limit: nil, or a *channel.RateLimitError (R9).
func (c *Channel) CheckSend(jid string) error { return c.limit.Check(jid) }
