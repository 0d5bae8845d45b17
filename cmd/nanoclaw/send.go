package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/control"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// stdin is where send and chat read input; tests replace it. (Main has no
// Stdin field yet.)
var stdin io.Reader = os.Stdin

// defaultWait is how long 'send --wait' waits when given no duration.
const defaultWait = 5 * time.Minute

const sendHelp = `Send one message to a group's local chat ("local:FOLDER") through the
running daemon, as if typed in 'nanoclaw chat'. The message is stored before
this command returns.

The text is the arguments joined with spaces; with no arguments, or "-", it
is read from stdin. In a group other than main, only a message starting with
the trigger (@` + "ASSISTANT_NAME" + `) starts a run; others are stored for the next one.

With --wait, the assistant's replies are printed to stdout as they arrive and
the command ends when the run ends: exit 0, or 1 when the run failed or the
wait timed out. Give a duration with '=' (--wait=30s): a bare --wait waits 5m.

A script that retries after a failure (nanoclaw was restarted, say) gives
the message an --id: a message with the same id in the same group is stored
only once, and a retry of a stored one succeeds without storing anything.`

// optionalDuration is a flag that may stand alone (--wait: the default
// duration) or carry a value (--wait=30s). Being a "bool flag" to the flag
// package is what lets it stand alone; its value must then follow '='.
type optionalDuration struct {
	set bool
	d   time.Duration
	def time.Duration
}

func (f *optionalDuration) IsBoolFlag() bool { return true }

func (f *optionalDuration) String() string {
	if f == nil || !f.set {
		return ""
	}
	return f.d.String()
}

func (f *optionalDuration) Set(v string) error {
	switch v {
	case "true":
		f.set, f.d = true, f.def
		return nil
	case "false":
		f.set, f.d = false, 0
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want a duration like 30s or 5m")
	}
	if d <= 0 {
		return fmt.Errorf("must be positive")
	}
	f.set, f.d = true, d
	return nil
}

// runSend is 'nanoclaw send': one message into a local chat, optionally
// waiting for the run that answers it.
func (m *Main) runSend(ctx context.Context, args []string) error {
	fs := m.flagSet("send", "[--group FOLDER] [--sender NAME] [--id ID] [--wait[=DURATION]] [TEXT... | -]", sendHelp)
	group := fs.String("group", "main", "the group folder; the message goes to chat local:FOLDER")
	sender := fs.String("sender", "", "your name in the chat (default: your user name)")
	id := fs.String("id", "", "the message's id, for safe retries: letters, digits, '.', '_', ':', '-' (default: a random one)")
	wait := &optionalDuration{def: defaultWait}
	fs.Var(wait, "wait", "print the replies and end when the run ends; --wait=DURATION bounds the wait (bare: 5m)")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	chat, name, err := chatFlags(*group, *sender)
	if err != nil {
		return err
	}
	if *id != "" {
		if err := local.ValidateID(*id); err != nil {
			return usagef("--id: %v", err)
		}
	}
	words := fs.Args()
	if before := argBefore(args, len(words)); len(words) > 0 && (before == "--wait" || before == "-wait") {
		if _, err := time.ParseDuration(words[0]); err == nil {
			return usagef("--wait takes its duration after '=': write --wait=%s (to send the text %q alone, pass it on stdin)", words[0], words[0])
		}
	}
	text, err := messageText(m, words)
	if err != nil {
		return err
	}

	cfg, err := config.Load(m.Getenv)
	if err != nil {
		return err
	}
	cl := control.Dial(cfg.ControlSocket())
	req := control.MessageRequest{Chat: chat, Sender: name, Text: text, ID: *id}
	if !wait.set {
		r, err := cl.PostMessage(ctx, req)
		if err != nil {
			return err
		}
		switch {
		case r.Duplicate:
			fmt.Fprintln(m.Stderr, duplicateNote(r.ID, r.Chat))
		case !r.WillAnswer:
			fmt.Fprintln(m.Stderr, notAnsweredNote(cfg))
		default:
			fmt.Fprintf(m.Stderr, "stored in %s as message %d\n", r.Chat, r.Seq)
		}
		return nil
	}

	wctx, cancel := context.WithTimeout(ctx, wait.d)
	defer cancel()
	st, err := cl.PostMessageWait(wctx, req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("nanoclaw did not confirm the message within %s; it may not be stored", wait.d)
		}
		return err
	}
	defer st.Close()
	for {
		ev, err := st.Next()
		if err != nil {
			switch {
			case wctx.Err() != nil && ctx.Err() == nil:
				return fmt.Errorf("no complete answer within %s; the message is stored and the run goes on (its replies show in 'nanoclaw chat --group %s')", wait.d, *group)
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, io.EOF):
				return errors.New("nanoclaw ended the stream before the run finished (did it stop?)")
			}
			return fmt.Errorf("read the reply stream: %w", err)
		}
		switch ev.Type {
		case local.EventStored:
			if ev.Duplicate {
				fmt.Fprintln(m.Stderr, duplicateNote(ev.ID, ev.Chat))
				return nil
			}
			if !ev.WillAnswer {
				fmt.Fprintln(m.Stderr, notAnsweredNote(cfg))
				return nil
			}
		case local.EventReply:
			printReply(m.Stdout, ev.Text)
		case local.EventDone:
			if ev.Error != "" {
				return fmt.Errorf("no answer: %s", sanitize.Terminal(ev.Error))
			}
			return nil
		case local.EventLagged:
			return fmt.Errorf("lost replies: %s", sanitize.Terminal(ev.Error))
		}
	}
}

// argBefore is the raw argument just before the n trailing positional ones:
// the last flag, or "--".
func argBefore(args []string, n int) string {
	if i := len(args) - n - 1; i >= 0 {
		return args[i]
	}
	return ""
}

// chatFlags validates --group and --sender into a chat id and a sender name.
func chatFlags(group, sender string) (chat, name string, err error) {
	if err := store.ValidateFolder(group); err != nil { // finding 5
		return "", "", usagef("--group: %v", err)
	}
	if sender == "" {
		sender = local.DefaultSender()
	}
	if err := local.ValidateSender(sender); err != nil {
		return "", "", usagef("--sender: %v", err)
	}
	return local.JID(group), sender, nil
}

// messageText is the text of 'send': the words joined, or stdin for none or "-".
func messageText(m *Main, words []string) (string, error) {
	var text string
	if len(words) == 0 || len(words) == 1 && words[0] == "-" {
		if isTerminal(stdin) {
			fmt.Fprintln(m.Stderr, "Type the message; end it with Ctrl-D.")
		}
		data, err := io.ReadAll(io.LimitReader(stdin, local.MaxTextBytes+1))
		if err != nil {
			return "", fmt.Errorf("read the message from stdin: %w", err)
		}
		text = string(data)
	} else {
		text = strings.Join(words, " ")
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return "", usagef("no message: give it as arguments or on stdin")
	}
	if err := local.ValidateText(text); err != nil {
		return "", usagef("%v", err)
	}
	return text, nil
}

// notAnsweredNote explains a stored message that starts no run.
func notAnsweredNote(cfg *config.Config) string {
	return fmt.Sprintf("stored; it does not start with %s, so no reply — it will be part of the next catch-up", cfg.Trigger())
}

// duplicateNote explains a retry of a message stored before.
func duplicateNote(id, chat string) string {
	return fmt.Sprintf("already stored: %s has a message with id %s, so nothing new was stored", chat, id)
}

// printReply writes a reply as sent (it carries the assistant's name), ending
// with one newline. R10: the model wrote it, so escape sequences and other
// controls are taken out before it reaches the terminal.
func printReply(w io.Writer, text string) {
	io.WriteString(w, strings.TrimRight(sanitize.Terminal(text), "\n")+"\n")
}

// isTerminal reports whether r or w is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	info, err := file.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}
