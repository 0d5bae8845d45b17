package telegram

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// DefaultPairTimeout is how long Pair waits for the owner's code.
const DefaultPairTimeout = 10 * time.Minute

// PrivacyNote is what the owner should know about groups, for the pairing
// output and the README.
const PrivacyNote = `In groups, a bot in Telegram's privacy mode (the default) sees only
messages that @-mention it, replies to its messages and /commands: the
assistant's context there is only what it sees. To let it see every
message, turn privacy mode off (@BotFather, /setprivacy, Disable) and
add the bot to the group again, or make it a group admin.`

// PairOptions configures Pair.
type PairOptions struct {
	// Token is the bot's token from @BotFather: a secret, never printed.
	Token string
	// Code is the one-time code the owner sends the bot; "" makes one
	// (NewPairCode) and shows it through Progress.
	Code string
	// Replace pairs even when a bot is paired already (instead of failing
	// with *AlreadyPairedError).
	Replace bool
	// Timeout bounds the wait for the code; 0 means DefaultPairTimeout.
	Timeout time.Duration
	// ServerURL is the Bot API's address; "" means DefaultServerURL.
	ServerURL string
	// HTTPClient carries the calls; nil means a default client.
	HTTPClient *http.Client
	// Logger receives the pairing's logs; nil means slog.Default().
	Logger *slog.Logger
	// Progress reports each step for the user; may be nil.
	Progress func(msg string)
}

// AlreadyPairedError reports that a bot is paired already; Pair replaces
// it only when asked to.
type AlreadyPairedError struct{ Username string }

func (e *AlreadyPairedError) Error() string {
	return fmt.Sprintf("Telegram is already paired with @%s", e.Username)
}

// codeAlphabet has no letters that read like others (0/O, 1/I/L).
const codeAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// NewPairCode makes a one-time pairing code, "XXXX-XXXX": 40 random bits,
// easy to type on a phone.
func NewPairCode() string {
	b := make([]byte, 8)
	for i := range b {
		b[i] = codeAlphabet[randIndex(len(codeAlphabet))]
	}
	return string(b[:4]) + "-" + string(b[4:])
}

// randIndex is a uniform random number below n.
func randIndex(n int) int {
	var b [1]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic("crypto/rand: " + err.Error()) // never fails on supported systems
		}
		if int(b[0]) < 256-256%n {
			return int(b[0]) % n
		}
	}
}

// normalCode is a code as typed, for comparing: without the white space
// and dashes a phone adds or drops, in upper case.
func normalCode(s string) string {
	return strings.ToUpper(strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == '\n' || r == '\t' || r == '\r' {
			return -1
		}
		return r
	}, s))
}

// Pair checks the token with Telegram (getMe), waits for a private message
// to the bot whose text is the one-time code, and stores the session: its
// sender is the owner, their private chat the one bound to main. The code
// is the secret, so whoever sends it is taken; other messages are ignored
// and not answered. The updates read while waiting are consumed. Nothing
// printed or returned in an error holds the token.
func Pair(ctx context.Context, st *store.Store, opts PairOptions) (store.TelegramSession, error) {
	token := strings.TrimSpace(opts.Token)
	if err := checkToken(token); err != nil {
		return store.TelegramSession{}, err
	}
	old, paired, err := st.TelegramSession(ctx)
	if err != nil {
		return store.TelegramSession{}, fmt.Errorf("pair telegram: %w", err)
	}
	if paired && !opts.Replace {
		return store.TelegramSession{}, &AlreadyPairedError{Username: old.Username}
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	code := opts.Code
	if code == "" {
		code = NewPairCode()
	}
	want := normalCode(code)
	if len(want) < 6 {
		return store.TelegramSession{}, errors.New("pair telegram: the code must have at least 6 letters or digits")
	}
	log := cmp.Or(opts.Logger, slog.Default()).With("channel", Name)
	a, err := newAPI(token, opts.ServerURL, opts.HTTPClient, log)
	if err != nil {
		return store.TelegramSession{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(max(opts.Timeout, 0), DefaultPairTimeout))
	defer cancel()

	progress("checking the token with Telegram…")
	me, err := a.getMe(ctx)
	switch {
	case errors.Is(err, errRevoked):
		return store.TelegramSession{}, errors.New("the token was refused by Telegram: copy it again from @BotFather (/token) and retry")
	case err != nil:
		var e *apiError
		if errors.As(err, &e) && e.status == http.StatusNotFound {
			return store.TelegramSession{}, errors.New("no Telegram bot has this token: copy it again from @BotFather (/token) and retry")
		}
		return store.TelegramSession{}, fmt.Errorf("pair telegram: %w", err)
	case me.Username == "":
		return store.TelegramSession{}, errors.New("pair telegram: Telegram names no username for this bot: is it a bot's token?")
	}
	progress(fmt.Sprintf("send this code to @%s in a private chat (https://t.me/%s): %s", me.Username, me.Username, code))

	var offset int64
	if paired && old.BotID == me.ID {
		offset = old.Offset
	}
	for {
		res, retryAfter, err := a.updates(ctx, offset, pollSeconds, []string{models.AllowedUpdateMessage})
		if err != nil {
			var e *apiError
			switch {
			case ctx.Err() != nil:
				return store.TelegramSession{}, fmt.Errorf("pair telegram: no code arrived in time: send %s to @%s in a private chat and run '%s' again", code, me.Username, PairCommand)
			case errors.Is(err, errRevoked):
				return store.TelegramSession{}, errors.New("the token was refused while waiting for the code: was it revoked? Copy the new one from @BotFather and retry")
			case errors.As(err, &e) && e.status == http.StatusConflict:
				return store.TelegramSession{}, errors.New("another program fetches this bot's updates (is nanoclaw running, or a webhook set?): stop it and pair again")
			}
			_ = a.sleep(ctx, max(retryAfter, pollPause)) // a ctx that ended is reported at the next turn
			continue
		}
		for _, id := range res.skipped {
			offset = max(offset, id+1)
		}
		for _, u := range res.updates {
			offset = max(offset, u.ID+1)
			owner, ok := codeFrom(u, want)
			if !ok {
				continue
			}
			sess := store.TelegramSession{Token: token, BotID: me.ID, Username: me.Username, OwnerChat: owner, Offset: u.ID + 1}
			former, err := st.PutTelegramSession(ctx, sess)
			if err != nil {
				return store.TelegramSession{}, fmt.Errorf("pair telegram: %w", err)
			}
			// Who sent the code is who gets main: say so, so an owner can
			// tell when the code reached someone else.
			_, name := senderOf(u.Message)
			who := name
			if u.Message.From.Username != "" {
				who += " (@" + sanitize.Name(u.Message.From.Username) + ")"
			}
			progress(fmt.Sprintf("the code came from %s, user id %d: that person is now the owner", who, owner))
			if former != "" {
				progress(fmt.Sprintf("the previous owner's chat %s no longer reaches any group", former))
			}
			// Telegram forgets the code message (and all before it) now,
			// not at the daemon's first poll.
			_, _, _ = a.updates(ctx, sess.Offset, 0, []string{models.AllowedUpdateMessage})
			confirm(ctx, a, owner)
			return sess, nil
		}
	}
}

// codeFrom is the user who sent the code in u, in a private chat with the
// bot; ok is false for anything else.
func codeFrom(u *models.Update, want string) (owner int64, ok bool) {
	m := u.Message
	if m == nil || m.Chat.Type != models.ChatTypePrivate || m.From == nil || m.From.IsBot || m.From.ID <= 0 || m.From.ID != m.Chat.ID {
		return 0, false
	}
	got := normalCode(m.Text)
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return 0, false
	}
	return m.From.ID, true
}

// confirm tells the owner the pairing worked; best effort.
func confirm(ctx context.Context, a *api, owner int64) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, err := a.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: owner,
		Text: "Paired: this chat now reaches the assistant's main group. Start nanoclaw if it is not running."})
	if err != nil {
		a.log.Debug("could not confirm the pairing in Telegram", "err", a.redact(err.Error()))
	}
}

// checkToken checks the shape of a bot token, "123456789:AA…", before it
// goes to Telegram.
func checkToken(token string) error {
	id, secret, ok := strings.Cut(token, ":")
	bad := !ok || id == "" || len(id) > 20 || len(secret) < 20 || len(token) > 200 ||
		strings.ContainsFunc(id, func(r rune) bool { return r < '0' || r > '9' }) ||
		strings.ContainsFunc(secret, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		})
	if bad {
		return errors.New("that is not a Telegram bot token (NUMBER:SECRET, as @BotFather gives it): copy it again")
	}
	return nil
}
