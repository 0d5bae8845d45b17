package whatsapp

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
)

// DefaultConnectTimeout is how long Pair tries to reach WhatsApp before it
// gives up.
const DefaultConnectTimeout = 30 * time.Second

// pairLimit bounds a whole pairing. WhatsApp itself closes the login after
// about 160 s of QR codes (one of 60 s, five of 20 s); this is the backstop.
const pairLimit = 4 * time.Minute

// loginWait is how long Pair waits, once paired, for the first real login
// (WhatsApp restarts the connection after pairing).
const loginWait = 30 * time.Second

// Account is a linked WhatsApp account.
type Account struct {
	// JID is the account's phone-number id, "15551234567@s.whatsapp.net":
	// also the id of its self-chat (Channel.Self).
	JID      string
	PushName string // the account's display name, when known
}

// Phone returns the account's phone number with a leading "+".
func (a Account) Phone() string {
	user, _, _ := strings.Cut(a.JID, "@")
	return "+" + user
}

func accountOf(jid types.JID, pushName string) Account {
	return Account{JID: jid.ToNonAD().String(), PushName: pushName}
}

// AlreadyPairedError reports that the database already holds a linked
// account; Pair replaces it only when asked to.
type AlreadyPairedError struct{ Account Account }

func (e *AlreadyPairedError) Error() string {
	return fmt.Sprintf("WhatsApp is already paired with %s", e.Account.Phone())
}

// ErrUnreachable is wrapped by every error that means WhatsApp's servers
// could not be reached (no network, DNS failure, timeout).
var ErrUnreachable = errors.New("cannot reach WhatsApp")

// PairOptions configures Pair.
type PairOptions struct {
	// Phone is the account's number, digits with country code as returned
	// by ParsePhone, to pair with an 8-character code typed on the phone;
	// "" pairs by scanning QR codes.
	Phone string
	// Replace pairs even when this database already holds a linked account
	// (instead of failing with *AlreadyPairedError), and deletes that
	// account's session once the new pairing succeeded — only locally: its
	// entry stays in the phone's "Linked devices" until removed there.
	Replace bool
	// ConnectTimeout bounds reaching WhatsApp; 0 means DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// Logger receives whatsmeow's logs; nil means slog.Default().
	Logger *slog.Logger
	// HTTPClient carries the websocket; nil means whatsmeow's default.
	HTTPClient *http.Client

	// Progress reports each step for the user ("connecting…"); may be nil.
	Progress func(msg string)
	// QR shows a QR code to scan, valid for the given time; required
	// unless Phone is set.
	QR func(code string, validFor time.Duration)
	// PairingCode shows the code to type on the phone; required when Phone
	// is set.
	PairingCode func(code string)
}

// Pair links NanoClaw to a WhatsApp account as a companion device, by QR code
// or phone-number code, and stores the session in db (NanoClaw's database).
// It returns once WhatsApp confirmed the pairing, or fails when WhatsApp
// cannot be reached within ConnectTimeout (an error wrapping ErrUnreachable),
// when the codes expire unused, or when ctx ends.
func Pair(ctx context.Context, db *sql.DB, opts PairOptions) (Account, error) {
	var phone string
	if opts.Phone != "" {
		var err error
		if phone, err = ParsePhone(opts.Phone); err != nil {
			return Account{}, err
		}
		if opts.PairingCode == nil {
			return Account{}, errors.New("pair: PairingCode callback missing")
		}
	} else if opts.QR == nil {
		return Account{}, errors.New("pair: QR callback missing")
	}
	log := cmp.Or(opts.Logger, slog.Default())
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	connectTimeout := cmp.Or(max(opts.ConnectTimeout, 0), DefaultConnectTimeout)

	container, device, err := openDevice(ctx, db, log)
	if err != nil {
		return Account{}, err
	}
	// old is a session to replace; it is deleted only once the new pairing
	// succeeded, so a failed attempt leaves the working one in place.
	var old *store.Device
	if device.ID != nil {
		if !opts.Replace {
			return Account{}, &AlreadyPairedError{Account: accountOf(*device.ID, device.PushName)}
		}
		old, device = device, container.NewDevice()
	}
	setDeviceProps()

	ctx, cancel := context.WithTimeout(ctx, pairLimit)
	defer cancel()
	cli := newClient(device, log, opts.HTTPClient)
	// A dropped connection during pairing is a failure to report, not a
	// reason to retry behind the user's back.
	cli.EnableAutoReconnect = false

	qr, err := cli.GetQRChannel(ctx)
	if err != nil {
		return Account{}, fmt.Errorf("pair: %w", err)
	}
	loggedIn := make(chan struct{}, 1)
	cli.AddEventHandler(func(evt any) {
		if _, ok := evt.(*events.Connected); ok {
			select {
			case loggedIn <- struct{}{}:
			default:
			}
		}
	})

	progress("Connecting to WhatsApp…")
	connectDone := make(chan struct{})
	defer func() {
		// whatsmeow holds its socket lock until the dial and handshake end
		// (the handshake ignores the context for up to 20 s): disconnect
		// after that without making the user wait for it.
		select {
		case <-connectDone:
			cli.Disconnect()
		default:
			go func() { <-connectDone; cli.Disconnect() }()
		}
	}()
	first, err := connectForPairing(ctx, cancel, cli, qr, connectTimeout, connectDone)
	if err != nil {
		return Account{}, err
	}

	if phone != "" {
		code, err := cli.PairPhone(ctx, phone, true, whatsmeow.PairClientChrome, "Chrome (Linux)")
		if err != nil {
			return Account{}, fmt.Errorf("request a pairing code for +%s: %w", phone, err)
		}
		opts.PairingCode(code)
	} else {
		opts.QR(first.Code, first.Timeout)
	}

	for item := range qr {
		switch {
		case item.Event == whatsmeow.QRChannelEventCode:
			if opts.Phone == "" {
				opts.QR(item.Code, item.Timeout)
			}
		case item == whatsmeow.QRChannelSuccess:
			acct := accountOf(cli.Store.GetJID(), cli.Store.PushName)
			if old != nil {
				gone := accountOf(*old.ID, old.PushName)
				if err := old.Delete(ctx); err != nil {
					return acct, fmt.Errorf("paired with %s, but could not delete the old session of %s: %w", acct.Phone(), gone.Phone(), err)
				}
				progress(fmt.Sprintf("Deleted the old session of %s; remove its entry under Linked devices on that phone.", gone.Phone()))
			}
			progress(fmt.Sprintf("Paired with %s; logging in…", acct.Phone()))
			select {
			case <-loggedIn:
			case <-time.After(loginWait):
				log.Warn("paired, but the first login did not finish; nanoclaw run will complete it", "account", acct.JID)
			case <-ctx.Done():
			}
			acct.PushName = cli.Store.PushName
			return acct, nil
		case item == whatsmeow.QRChannelTimeout:
			if ctx.Err() != nil {
				return Account{}, fmt.Errorf("pairing stopped: %w", context.Cause(ctx))
			}
			if opts.Phone != "" {
				return Account{}, errors.New("pairing timed out: the code was not entered in time; run the command again for a new one")
			}
			return Account{}, errors.New("pairing timed out: no QR code was scanned in time; run the command again")
		case item == whatsmeow.QRChannelScannedWithoutMultidevice:
			progress("The phone has multi-device turned off: enable it and scan again.")
		default:
			return Account{}, qrFailure(item)
		}
	}
	if err := ctx.Err(); err != nil {
		return Account{}, fmt.Errorf("pairing stopped: %w", err)
	}
	return Account{}, errors.New("pairing failed: WhatsApp closed the connection")
}

// connectForPairing connects and waits for the first QR code, which is when
// WhatsApp has answered. It gives up after timeout, even if whatsmeow's dial
// or handshake would take longer: cancel aborts them.
// done is closed when whatsmeow's connect call has returned.
func connectForPairing(ctx context.Context, cancel context.CancelFunc, cli *whatsmeow.Client,
	qr <-chan whatsmeow.QRChannelItem, timeout time.Duration, done chan<- struct{}) (whatsmeow.QRChannelItem, error) {
	errc := make(chan error, 1)
	go func() {
		err := cli.ConnectContext(ctx)
		close(done)
		errc <- err
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case err := <-errc:
			if err != nil {
				cancel()
				return whatsmeow.QRChannelItem{}, fmt.Errorf("%w: %w", ErrUnreachable, err)
			}
			errc = nil // connected; now wait for WhatsApp's first code
		case item, ok := <-qr:
			switch {
			case !ok || item == whatsmeow.QRChannelTimeout:
				return whatsmeow.QRChannelItem{}, fmt.Errorf("%w: the connection closed before pairing began", ErrUnreachable)
			case item.Event == whatsmeow.QRChannelEventCode:
				return item, nil
			default:
				return whatsmeow.QRChannelItem{}, qrFailure(item)
			}
		case <-timer.C:
			cancel()
			return whatsmeow.QRChannelItem{}, fmt.Errorf("%w: no answer within %s (check the network connection)", ErrUnreachable, timeout)
		case <-ctx.Done():
			return whatsmeow.QRChannelItem{}, fmt.Errorf("pairing stopped: %w", context.Cause(ctx))
		}
	}
}

// qrFailure is the error of an item of the QR channel that ends pairing.
func qrFailure(item whatsmeow.QRChannelItem) error {
	switch {
	case item.Event == whatsmeow.QRChannelEventError:
		return fmt.Errorf("pairing failed: %w", item.Error)
	case item == whatsmeow.QRChannelClientOutdated:
		return errors.New("pairing failed: WhatsApp refused this client as outdated; upgrade nanoclaw")
	}
	return fmt.Errorf("pairing failed: unexpected %q", item.Event)
}

// ParsePhone validates a phone number for pairing by code: digits with the
// country code, optionally with a leading "+" (spaces, dashes, dots and
// parentheses are ignored), 7 to 15 digits (E.164), not starting with 0. It
// returns the digits alone.
func ParsePhone(s string) (string, error) {
	var b strings.Builder
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", fmt.Errorf("phone number %q: unexpected %q; want digits with country code, like +14155550123", s, r)
		}
	}
	d := b.String()
	switch {
	case d == "":
		return "", fmt.Errorf("phone number %q: no digits; want digits with country code, like +14155550123", s)
	case d[0] == '0':
		return "", fmt.Errorf("phone number %q: starts with 0; want the international form with country code, like +14155550123", s)
	case len(d) < 7 || len(d) > 15:
		return "", fmt.Errorf("phone number %q: %d digits; want 7 to 15 with country code, like +14155550123", s, len(d))
	}
	return d, nil
}
