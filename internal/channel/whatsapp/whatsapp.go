// Package whatsapp is the WhatsApp channel: a channel.Channel on whatsmeow
// (go.mau.fi/whatsmeow), linked to the user's own account as a companion
// device, like WhatsApp Web.
//
// Its session (keys, contacts, the LID map) lives in NanoClaw's database,
// in whatsmeow's own tables (see openDevice). Pairing is done once by
// Pair (`nanoclaw pair whatsapp`); the daemon then only connects.
//
// Durable before acknowledged: whatsmeow calls the event handler
// synchronously while it handles an incoming message and sends the
// message's receipt — WhatsApp's acknowledgement, after which the server
// forgets the message — only after the handler returned success. The
// channel hands each message to Handler.OnMessage inside that handler and
// reports failure when OnMessage fails, so an unstored message is not
// acknowledged; whatsmeow keeps its decrypted text in its event buffer
// (whatsmeow_event_buffer) and handles it again when the server redelivers.
//
// Media: photos, stickers, voice notes, audio, video and documents arrive
// as attachments the host fetches, bounded, with Attachment.Fetch; files,
// reactions and quoted replies go out through SendFile, React and
// SendQuoting (see media.go and send.go for what whatsmeow is and is not
// trusted with).
//
// Addresses: WhatsApp names a user by phone number ("15551234567@s.whatsapp.net")
// or by an opaque LID ("98765@lid"), and the same chat — the account's own
// self-chat in particular — can arrive under either. The channel maps every
// user address to its phone-number form where known, so each chat has one
// id; Self is the self-chat's phone-number id.
package whatsapp

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

// Name is the channel's short name.
const Name = "whatsapp"

// PairCommand is what the user runs to (re)link NanoClaw to WhatsApp.
const PairCommand = "nanoclaw pair whatsapp"

// ErrNotPaired reports that no WhatsApp account is linked yet.
var ErrNotPaired = errors.New("WhatsApp is not paired: run '" + PairCommand + "' first")

// ErrLoggedOut reports that WhatsApp unlinked this device (removed from the
// phone's "Linked devices", or expired). whatsmeow has deleted the session;
// it will not reconnect.
var ErrLoggedOut = errors.New("WhatsApp logged this device out: run '" + PairCommand + "' to pair again, then restart nanoclaw")

// ErrReplaced reports that another client connected with the same session
// (a second nanoclaw on a copy of the database?); whatsmeow stops
// reconnecting so that the two do not take turns.
var ErrReplaced = errors.New("another client connected to WhatsApp with this session, so this one was disconnected: make sure only one nanoclaw runs with this database")

// groupSyncInterval is how often group names are re-read; they are also
// read at (re)connect.
const groupSyncInterval = 24 * time.Hour

// minGroupResync keeps a flapping connection from fetching the group list at
// every reconnect.
const minGroupResync = time.Hour

// Options configures a Channel.
type Options struct {
	// Logger receives the channel's and whatsmeow's logs; nil means
	// slog.Default().
	Logger *slog.Logger
	// HTTPClient carries the WhatsApp websocket; nil means whatsmeow's
	// default (which honours HTTPS_PROXY). Tests point it at a dead end.
	HTTPClient *http.Client
	// SendLimit paces the messages sent to each chat (R9); nil means
	// channel's defaults.
	SendLimit *channel.SendLimit
}

// Channel is the WhatsApp connection. Create it with New; it is safe for
// concurrent use.
type Channel struct {
	log       *slog.Logger
	container *sqlstore.Container
	device    *store.Device
	cli       *whatsmeow.Client
	limit     *channel.SendLimit
	// send sends one message (cli.SendMessage), upload encrypts and uploads
	// a file (cli.Upload), presence shows or clears "typing…"
	// (cli.SendChatPresence), download fetches a media item
	// (Channel.downloadMedia): what the channel asks of whatsmeow's client
	// beyond connecting, so tests can replace each.
	send     func(ctx context.Context, to types.JID, msg *waE2E.Message) (whatsmeow.SendResponse, error)
	upload   func(ctx context.Context, data []byte, kind whatsmeow.MediaType) (whatsmeow.UploadResponse, error)
	presence func(ctx context.Context, to types.JID, state types.ChatPresence) error
	download downloadFunc

	recent recentSenders // how WhatsApp addressed the latest messages' senders

	// life ends with Close; it bounds handlers and the group-sync goroutine.
	life   context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	resync chan struct{} // a (re)connect asks for a group sync

	mu         sync.Mutex
	handler    channel.Handler
	connected  bool               // logged in since Connect; whatsmeow handles drops
	waiter     chan error         // the pending Connect's outcome, nil when none
	connCancel context.CancelFunc // ends the current connection's context
	syncing    bool               // the group-sync goroutine is running
	typing     map[string]*typer  // the chats "typing…" is kept shown in
	closed     bool
	fatal      error // a logout or replacement: the channel cannot go on
}

var (
	_ channel.Channel    = (*Channel)(nil)
	_ channel.Limited    = (*Channel)(nil)
	_ channel.FileSender = (*Channel)(nil)
	_ channel.Reactor    = (*Channel)(nil)
	_ channel.Quoter     = (*Channel)(nil)
)

// New opens the WhatsApp session stored in db (creating or upgrading
// whatsmeow's tables) without connecting. db is NanoClaw's database, opened
// by store.Open; the caller keeps ownership of it and closes it after Close.
func New(ctx context.Context, db *sql.DB, opts Options) (*Channel, error) {
	log := cmp.Or(opts.Logger, slog.Default()).With("channel", Name)
	container, device, err := openDevice(ctx, db, log)
	if err != nil {
		return nil, err
	}
	cli := newClient(device, log, opts.HTTPClient)
	life, stop := context.WithCancel(context.Background())
	c := &Channel{
		log: log, container: container, device: device, cli: cli,
		limit: cmp.Or(opts.SendLimit, channel.NewSendLimit(0, 0)),
		send: func(ctx context.Context, to types.JID, msg *waE2E.Message) (whatsmeow.SendResponse, error) {
			return cli.SendMessage(ctx, to, msg)
		},
		upload: cli.Upload,
		presence: func(ctx context.Context, to types.JID, state types.ChatPresence) error {
			return cli.SendChatPresence(ctx, to, state, "")
		},
		life: life, stop: stop, resync: make(chan struct{}, 1),
	}
	c.download = c.downloadMedia
	// Reconnection is whatsmeow's: after a dropped connection it retries
	// with a growing delay; after a logout or a replaced stream it stops.
	cli.EnableAutoReconnect = true
	cli.InitialAutoReconnect = true
	// Acknowledge a message only after our handler returned (see the package
	// comment), and keep its plaintext until then so a redelivery can be
	// decrypted again.
	cli.SynchronousAck = true
	cli.EnableDecryptedEventBuffer = true
	cli.AddEventHandlerWithSuccessStatus(c.handleEvent)
	return c, nil
}

// newClient makes a whatsmeow client for device.
func newClient(device *store.Device, log *slog.Logger, hc *http.Client) *whatsmeow.Client {
	cli := whatsmeow.NewClient(device, waLogger{log, "whatsmeow/client"})
	if hc != nil {
		cli.SetWebsocketHTTPClient(hc)
		cli.SetPreLoginHTTPClient(hc)
		cli.SetMediaHTTPClient(hc)
	}
	return cli
}

// Name returns "whatsapp".
func (c *Channel) Name() string { return Name }

// Owns reports whether jid is a WhatsApp chat id: a phone-number, LID or
// group address.
func (c *Channel) Owns(jid string) bool {
	_, err := ParseChatJID(jid)
	return err == nil
}

// Connect connects to WhatsApp and delivers events to h. It returns once
// WhatsApp accepted the login; while the network is down whatsmeow keeps
// retrying, so Connect waits until ctx ends, then gives up ("cannot reach
// WhatsApp"). It returns ErrNotPaired when no account is linked, and
// ErrLoggedOut when WhatsApp refuses the session. After a successful
// Connect, reconnection is whatsmeow's own business; Connect may be called
// again after it failed.
func (c *Channel) Connect(ctx context.Context, h channel.Handler) error {
	if h == nil {
		return errors.New("whatsapp connect: nil handler")
	}
	var err error
	c.mu.Lock()
	switch {
	case c.closed:
		err = errors.New("whatsapp connect: channel is closed")
	case c.fatal != nil:
		err = c.fatal
	case c.waiter != nil:
		err = errors.New("whatsapp connect: already connecting")
	case c.connected:
		err = errors.New("whatsapp connect: already connected")
	case c.device.ID == nil:
		err = ErrNotPaired
	}
	if err != nil {
		c.mu.Unlock()
		return err
	}
	c.handler = h
	waiter := make(chan error, 1)
	c.waiter = waiter
	// The connection's context outlives this call: whatsmeow runs the
	// socket, its handlers and its reconnects under it.
	connCtx, cancel := context.WithCancel(c.life)
	c.connCancel = cancel
	c.cli.BackgroundEventCtx = connCtx
	if !c.syncing {
		c.syncing = true
		c.wg.Go(c.syncGroups)
	}
	started := time.Now()
	// Started under mu, so Close waits for it.
	c.wg.Go(func() {
		// With InitialAutoReconnect, a network error here comes back as nil
		// and whatsmeow retries in the background; anything else is final.
		// The dial follows connCtx; whatsmeow's handshake gives up after 20 s.
		if err := c.cli.ConnectContext(connCtx); err != nil {
			c.finishConnect(fmt.Errorf("cannot reach WhatsApp: %w", err))
		}
	})
	c.mu.Unlock()

	select {
	case err = <-waiter:
	case <-ctx.Done():
		err = fmt.Errorf("cannot reach WhatsApp: not connected after %s: %w", time.Since(started).Round(time.Second), ctx.Err())
	}
	if err != nil {
		cancel() // aborts a dial in progress and stops whatsmeow's retries
		c.cli.Disconnect()
	}
	c.mu.Lock()
	if c.waiter == waiter {
		c.waiter = nil
	}
	if err != nil {
		c.connected = false // a login that raced the deadline is undone too
	}
	c.mu.Unlock()
	return err
}

// finishConnect ends a pending Connect with err (nil: connected).
func (c *Channel) finishConnect(err error) {
	c.mu.Lock()
	w := c.waiter
	c.waiter = nil
	c.mu.Unlock()
	if w != nil {
		w <- err
	}
}

// handleEvent is whatsmeow's event handler. It returns false only when a
// message could not be stored: whatsmeow then does not acknowledge it.
func (c *Channel) handleEvent(evt any) bool {
	switch e := evt.(type) {
	case *events.Message:
		return c.onMessage(e)
	case *events.Connected:
		c.onConnected()
	case *events.Disconnected:
		c.log.Warn("disconnected from WhatsApp; reconnecting")
	case *events.UndecryptableMessage:
		// whatsmeow has asked the sender to send it again; a success arrives
		// as an ordinary message.
		c.log.Warn("could not decrypt a WhatsApp message; the sender was asked to resend it",
			"chat", e.Info.Chat.String(), "id", e.Info.ID)
	case *events.KeepAliveTimeout:
		c.log.Debug("WhatsApp keepalive timed out", "errors", e.ErrorCount)
	case *events.LoggedOut:
		c.fail(ErrLoggedOut, "reason", e.Reason.String())
	case *events.StreamReplaced:
		c.fail(ErrReplaced)
	case *events.TemporaryBan:
		c.fail(fmt.Errorf("WhatsApp temporarily banned this account: %s", e.String()))
	case *events.ClientOutdated:
		c.fail(errors.New("WhatsApp refused this client as outdated: upgrade nanoclaw"))
	case *events.ConnectFailure:
		c.fail(fmt.Errorf("WhatsApp refused the connection: %s (%s)", e.Reason, e.Message))
	case *events.CATRefreshError:
		c.fail(fmt.Errorf("WhatsApp connection failed: %w", e.Error))
	case *events.PushName:
		c.onChat(channel.ChatInfo{JID: c.identity().canonical(e.JID, e.JIDAlt).String(), Name: e.NewPushName})
	case *events.GroupInfo:
		if e.Name != nil {
			c.onChat(channel.ChatInfo{JID: e.JID.String(), Name: e.Name.Name, IsGroup: true, LastActivity: e.Timestamp})
		}
	case *events.JoinedGroup:
		c.onChat(channel.ChatInfo{JID: e.JID.String(), Name: e.Name, IsGroup: true})
	}
	return true
}

// onMessage stores one message through the handler, synchronously (see the
// package comment).
func (c *Channel) onMessage(evt *events.Message) bool {
	m, ok := convert(evt, c.identity(), c.download)
	if !ok {
		return true
	}
	c.recent.remember(m.ChatJID, m.ID, evt.Info.Sender)
	c.mu.Lock()
	h := c.handler
	c.mu.Unlock()
	if h == nil {
		c.log.Error("WhatsApp message arrived before a handler was set; not acknowledging it", "chat", m.ChatJID, "id", m.ID)
		return false
	}
	if _, err := h.OnMessage(c.life, c, m); err != nil {
		c.log.Error("could not store WhatsApp message; not acknowledging it, WhatsApp will deliver it again",
			"chat", m.ChatJID, "id", m.ID, "err", err)
		return false
	}
	return true
}

// onConnected marks the channel connected and ends a pending Connect.
func (c *Channel) onConnected() {
	id := c.identity()
	c.mu.Lock()
	c.connected = true
	c.mu.Unlock()
	c.log.Info("connected to WhatsApp", "account", id.pn.String(), "lid", id.lid.String())
	c.finishConnect(nil)
	// So that WhatsApp relays our typing indicator and shows our name; it
	// also marks the account online, as WhatsApp Web does while open.
	if err := c.cli.SendPresence(c.life, types.PresenceAvailable); err != nil {
		c.log.Debug("could not send WhatsApp presence", "err", err)
	}
	select {
	case c.resync <- struct{}{}:
	default:
	}
	c.onChat(channel.ChatInfo{JID: id.pn.String(), Name: id.pushName})
}

// fail logs a failure after which whatsmeow does not reconnect, and ends a
// pending Connect with it. It never retries: the user must act.
func (c *Channel) fail(err error, attrs ...any) {
	c.mu.Lock()
	c.connected = false
	if c.fatal == nil {
		c.fatal = err
	}
	c.mu.Unlock()
	c.log.Error("WhatsApp channel stopped", append([]any{"err", err}, attrs...)...)
	c.finishConnect(err)
}

func (c *Channel) onChat(info channel.ChatInfo) {
	c.mu.Lock()
	h := c.handler
	c.mu.Unlock()
	if h == nil || info.JID == "" {
		return
	}
	info.Name = validText(info.Name)
	h.OnChat(c.life, c, info)
}

// usable reports why the channel cannot talk to WhatsApp, or nil.
func (c *Channel) usable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return errors.New("channel is closed")
	case c.fatal != nil:
		return c.fatal
	case !c.connected:
		return errors.New("not connected")
	}
	return nil
}

// Self returns the self-chat's id — the account's phone-number JID, such as
// "15551234567@s.whatsapp.net" — once connected, and "" before, after a
// logout and after Close. The self-chat arrives under this id whether
// WhatsApp addressed it by phone number or by LID.
func (c *Channel) Self() string {
	if c.usable() != nil {
		return ""
	}
	return c.identity().pn.String()
}

// Close disconnects, stops the channel's goroutines and waits for them. It
// does not close the database.
func (c *Channel) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.connected = false
	cancel := c.connCancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	c.cli.Disconnect()
	c.stop()
	c.wg.Wait()
	return nil
}
