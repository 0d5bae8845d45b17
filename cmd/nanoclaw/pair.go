package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mdp/qrterminal/v3"

	"github.com/nanoclaw/nanoclaw/internal/channel/telegram"
	"github.com/nanoclaw/nanoclaw/internal/channel/whatsapp"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/daemon"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

const pairHelp = `Link nanoclaw to a chat account: WhatsApp or a Telegram bot.

nanoclaw pair whatsapp [--phone NUMBER] [--timeout DURATION] [--replace]

nanoclaw becomes a linked device of your WhatsApp account, like WhatsApp Web.
By default it shows QR codes: on the phone open WhatsApp, Settings, Linked
devices, Link a device, and scan the code. With --phone it prints an
8-character code instead: on the phone choose "Link with phone number instead"
and type it.

The session is kept in nanoclaw's database (encrypted when the database is).
Stop the daemon ('nanoclaw run') before pairing: both would use one session.
Your own chat with yourself ("Message yourself") becomes the main group.

nanoclaw pair telegram [--token-file FILE] [--timeout DURATION] [--replace]

Make a bot with @BotFather (/newbot) and give its token in a file, or type
it when asked (it is not shown). nanoclaw checks it with Telegram, prints a
one-time code, and waits: send the code to your bot in a private chat. That
chat becomes the main group; nobody else can claim it. The token is kept in
nanoclaw's database (encrypted when the database is), never printed. Stop
the daemon first: both would read the bot's messages.`

// pairHTTPClient replaces whatsmeow's HTTP client in tests, which point it
// at a dead end; nil in the real command.
var pairHTTPClient *http.Client

// runPair is 'nanoclaw pair whatsapp': it links the data home's database to a
// WhatsApp account, by QR code or by phone-number code.
func (m *Main) runPair(ctx context.Context, args []string) error {
	fs := m.flagSet("pair", "whatsapp [--phone NUMBER] [--timeout DURATION] [--replace] | telegram [--token-file FILE] [--timeout DURATION] [--replace]", pairHelp)
	phone := fs.String("phone", "", "WhatsApp: pair by a code typed on the phone: the account's number with country code, like +14155550123")
	tokenFile := fs.String("token-file", "", "Telegram: read the bot's token from this file instead of asking")
	timeout := fs.Duration("timeout", 0, "WhatsApp: give up when it cannot be reached within this time (default 1m); Telegram: when the code does not come within it (default 10m)")
	replace := fs.Bool("replace", false, "forget an account already paired here and pair anew")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	// The channel name comes first ("pair whatsapp --phone …"), and the
	// flag package stops at it: parse what follows it too.
	if fs.NArg() == 0 {
		return usagef("name the channel to pair: 'nanoclaw pair whatsapp'")
	}
	name := fs.Arg(0)
	if err := m.parse(fs, fs.Args()[1:]); err != nil {
		return err
	}
	if *timeout < 0 {
		return usagef("--timeout must be positive, got %s", *timeout)
	}
	if name == telegram.Name {
		if fs.NArg() > 0 {
			return usagef("unexpected argument %q", fs.Arg(0))
		}
		if *phone != "" {
			return usagef("--phone is for WhatsApp; a Telegram bot pairs with its token (--token-file)")
		}
		return m.pairTelegram(ctx, *tokenFile, cmp.Or(*timeout, telegram.DefaultPairTimeout), *replace)
	}
	if name != whatsapp.Name {
		return usagef("cannot pair %q: pair 'whatsapp' or 'telegram'", name)
	}
	if *tokenFile != "" {
		return usagef("--token-file is for Telegram")
	}
	*timeout = cmp.Or(*timeout, whatsapp.DefaultConnectTimeout)
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *phone != "" {
		if _, err := whatsapp.ParsePhone(*phone); err != nil {
			return usagef("--phone: %v", err)
		}
	}

	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	st, done, err := m.pairingStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()

	say := func(msg string) { fmt.Fprintln(m.Stderr, msg) }
	acct, err := whatsapp.Pair(ctx, st.DB(), whatsapp.PairOptions{
		Phone:          *phone,
		Replace:        *replace,
		ConnectTimeout: *timeout,
		Logger:         m.Logger,
		HTTPClient:     pairHTTPClient,
		Progress:       say,
		QR: func(code string, validFor time.Duration) {
			say("\nScan this QR code with WhatsApp (Settings > Linked devices > Link a device):")
			qrterminal.GenerateHalfBlock(code, qrterminal.L, m.Stderr)
			say(fmt.Sprintf("Waiting… (a new code follows in %s)", validFor.Round(time.Second)))
		},
		PairingCode: func(code string) {
			say(fmt.Sprintf("\nYour pairing code: %s\n", code))
			say("On the phone: WhatsApp > Settings > Linked devices > Link a device >")
			say(`"Link with phone number instead", then type the code. Waiting…`)
		},
	})
	var already *whatsapp.AlreadyPairedError
	if errors.As(err, &already) {
		return fmt.Errorf("%v; to pair again, run 'nanoclaw pair whatsapp --replace'", err)
	}
	if err != nil {
		return err
	}
	who := acct.Phone()
	if acct.PushName != "" {
		who += " (" + acct.PushName + ")"
	}
	fmt.Fprintf(m.Stdout, "Paired with WhatsApp account %s.\n", who)
	fmt.Fprintf(m.Stdout, "Its self-chat %s is the main group. Start nanoclaw with 'nanoclaw run'.\n", acct.JID)
	return nil
}

// pairTelegram is 'nanoclaw pair telegram': it checks the bot's token,
// shows a one-time code and waits for the owner to send it to the bot; that
// private chat becomes main's. The token is kept in the database, never
// printed.
func (m *Main) pairTelegram(ctx context.Context, tokenFile string, timeout time.Duration, replace bool) error {
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	token, err := m.readSecret(tokenFile, "--token-file", "Telegram bot token (from @BotFather)", isTerminal(stdin) && isTerminal(m.Stdout),
		"no token: give --token-file FILE (a file holding the bot's token from @BotFather), or run this on a terminal")
	if err != nil {
		return err
	}
	st, done, err := m.pairingStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer done()
	code := telegram.NewPairCode()
	sess, err := telegram.Pair(ctx, st, telegram.PairOptions{Token: token, Code: code, Replace: replace, Timeout: timeout,
		ServerURL: cfg.TelegramAPIURL.String(), Logger: m.Logger,
		Progress: func(msg string) { fmt.Fprintln(m.Stderr, sanitize.Terminal(msg)) }})
	var already *telegram.AlreadyPairedError
	if errors.As(err, &already) {
		return fmt.Errorf("%v; to pair another bot, run 'nanoclaw pair telegram --replace'", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "Paired with the Telegram bot @%s.\n", sess.Username)
	fmt.Fprintf(m.Stdout, "Your private chat with it (%s%d) is the main group. Start nanoclaw with 'nanoclaw run'.\n\n%s\n",
		store.TelegramChatPrefix, sess.OwnerChat, telegram.PrivacyNote)
	return nil
}

// pairingStore opens the data home's store for pairing, with the home
// locked: the daemon uses the same session (two WhatsApp clients on one
// session knock each other off; two readers of a Telegram bot take each
// other's updates). done unlocks and closes.
func (m *Main) pairingStore(ctx context.Context, cfg *config.Config) (*store.Store, func(), error) {
	if err := daemon.PrepareHome(cfg, m.Logger); err != nil {
		return nil, nil, err
	}
	unlock, err := daemon.LockHome(cfg)
	if errors.Is(err, daemon.ErrHomeInUse) {
		return nil, nil, fmt.Errorf("nanoclaw is running with data home %s: stop it first, then pair", cfg.Home)
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := daemon.OpenStore(ctx, cfg, m.Logger)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return st, func() { st.Close(); unlock() }, nil
}
