package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/control"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

const chatHelp = `Chat with the assistant in this terminal, in a group's local chat
("local:FOLDER") of the running daemon. Each line you type is one message;
empty lines are ignored; /quit or Ctrl-D ends the chat. Replies are printed
as they arrive, files the assistant sends are saved into --save-dir (never
over an existing file) and their paths printed, and its typing and
reactions are shown as lines starting with '·'. In a group other than main,
only a message starting with the trigger (@ASSISTANT_NAME) starts a run.

` + chatCommands + `

stdin may be a pipe: then each line is sent, and after the end of input the
command waits (at most --timeout) for the replies still outstanding. It exits
1 when a run failed, a line was not sent or a file not saved.`

// chatCommands is what /help prints.
const chatCommands = `Commands:
  /attach PATH [CAPTION]  send a file (a photo, voice note, PDF…); a PATH with spaces in "quotes"
  /reply ID TEXT          send TEXT as a reply to message ID (ids show after /attach and in reactions)
  /help                   this list
  /quit                   end the chat (as Ctrl-D does)
  //TEXT                  send a message that starts with '/'`

// chatEvent is one item of the event stream, or the error that ended it.
type chatEvent struct {
	ev  local.Event
	err error
}

// runChat is 'nanoclaw chat': lines from stdin in, replies out.
func (m *Main) runChat(ctx context.Context, args []string) error {
	fs := m.flagSet("chat", "[--group FOLDER] [--sender NAME] [--timeout DURATION] [--save-dir DIR]", chatHelp)
	group := fs.String("group", "main", "the group folder; the chat is local:FOLDER")
	sender := fs.String("sender", "", "your name in the chat (default: your user name)")
	timeout := fs.Duration("timeout", defaultWait, "after the end of piped input, how long to wait for outstanding replies")
	saveDir := fs.String("save-dir", ".", "save the files the assistant sends into `DIR`")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q (messages are read from stdin)", fs.Arg(0))
	}
	if *timeout <= 0 {
		return usagef("--timeout must be positive, got %s", *timeout)
	}
	chat, name, err := chatFlags(*group, *sender)
	if err != nil {
		return err
	}
	if err := checkSaveDir(*saveDir); err != nil {
		return err
	}
	cfg, err := config.Load(m.Getenv)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cl := control.Dial(cfg.ControlSocket())
	// Subscribed before the first message is posted, so no reply is missed.
	stream, err := cl.Events(ctx, chat)
	if err != nil {
		return err
	}
	defer stream.Close()

	in := stdin
	c := &chatSession{
		m: m, cfg: cfg, cl: cl, chat: chat, sender: name,
		interactive: isTerminal(in),
		status:      isTerminal(m.Stderr),
		saver:       &fileSaver{dir: *saveDir, from: local.FilesDir(cfg.Home), max: cfg.MediaMaxBytes},
	}
	if c.interactive {
		fmt.Fprintf(m.Stderr, "Chatting with %s in %s as %s. /help lists the commands; /quit or Ctrl-D ends.\n", cfg.AssistantName, chat, name)
	}

	events := make(chan chatEvent)
	go func() { // ends when the stream is closed or cut (deferred above)
		for {
			ev, err := stream.Next()
			select {
			case events <- chatEvent{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	lines := make(chan string)
	inputErr := make(chan error, 1)
	go func() {
		// A read from a terminal cannot be interrupted: when the chat ends
		// first, this goroutine ends with the process.
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 4096), local.MaxTextBytes+1)
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "/quit" {
				break
			}
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		inputErr <- sc.Err()
		close(lines)
	}()
	return c.loop(ctx, events, lines, inputErr, *timeout)
}

// chatSession is the state of one 'nanoclaw chat'.
type chatSession struct {
	m                   *Main
	cfg                 *config.Config
	cl                  *control.Client
	chat, sender        string
	interactive, status bool // stdin is a terminal; stderr is a terminal
	saver               *fileSaver

	pending    int64 // highest position that starts a run not yet ended; 0: none
	failures   int   // runs that failed
	notSent    int   // lines the daemon did not store
	unsaved    int   // files the assistant sent that could not be saved
	typing     bool  // the transient typing status is shown (stderr a terminal)
	typingLine bool  // the typing line was written since typing last stopped (not a terminal)
}

func (c *chatSession) loop(ctx context.Context, events <-chan chatEvent, lines <-chan string, inputErr <-chan error, timeout time.Duration) error {
	var drain <-chan time.Time
	for {
		select {
		case line, ok := <-lines:
			if !ok { // end of input, or /quit
				if err := <-inputErr; err != nil {
					c.clearStatus()
					if errors.Is(err, bufio.ErrTooLong) {
						err = fmt.Errorf("a line is longer than %d bytes", local.MaxTextBytes)
					}
					fmt.Fprintf(c.m.Stderr, "input ended: %v\n", err)
					c.notSent++
				}
				if c.interactive || c.pending == 0 {
					return c.result()
				}
				lines = nil
				drain = time.After(timeout)
				continue
			}
			if err := c.post(ctx, line); err != nil {
				return err
			}
		case e := <-events:
			if e.err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(e.err, io.EOF) {
					return errors.New("nanoclaw ended the chat (did it stop?)")
				}
				return fmt.Errorf("read the chat's events: %w", e.err)
			}
			if err := c.show(e.ev); err != nil {
				return err
			}
			if lines == nil && c.pending == 0 {
				return c.result()
			}
		case <-drain:
			c.clearStatus()
			return fmt.Errorf("gave up waiting for the outstanding reply after %s (the run goes on in the daemon)", timeout)
		case <-ctx.Done():
			c.clearStatus()
			return nil
		}
	}
}

// post sends one typed line, or runs the command it is; a message the
// daemon rejects is reported and the chat goes on.
func (c *chatSession) post(ctx context.Context, line string) error {
	text := strings.TrimSpace(line)
	if text == "" {
		return nil
	}
	req, err := c.request(text)
	if err == nil && req.Chat == "" { // a command that sends nothing
		return nil
	}
	if err != nil {
		c.clearStatus()
		fmt.Fprintf(c.m.Stderr, "not sent: %s\n", sanitize.Terminal(err.Error()))
		c.notSent++
		return nil
	}
	r, err := c.cl.PostMessage(ctx, req)
	var apiErr *control.APIError
	if errors.As(err, &apiErr) { // the daemon answered: the chat goes on
		c.clearStatus()
		fmt.Fprintf(c.m.Stderr, "not sent: %s\n", sanitize.Terminal(err.Error()))
		c.notSent++
		return nil
	}
	if err != nil {
		return err
	}
	if len(req.Files) > 0 || req.ReplyTo != "" {
		c.clearStatus()
		fmt.Fprintf(c.m.Stderr, "· sent as message %s\n", r.ID)
	}
	switch {
	case r.WillAnswer:
		c.pending = max(c.pending, r.Seq)
	case r.Taken != "":
		// nanoclaw's answer shows in the chat as it is sent to main.
	default:
		c.clearStatus()
		fmt.Fprintln(c.m.Stderr, notAnsweredNote(c.cfg))
	}
	return nil
}

// request is the message a typed line asks for: its text, or what its
// command makes. A command that sends nothing (/help) gives a request
// without a chat.
func (c *chatSession) request(text string) (control.MessageRequest, error) {
	req := control.MessageRequest{Chat: c.chat, Sender: c.sender}
	word, rest := text, ""
	if i := strings.IndexFunc(text, unicode.IsSpace); i >= 0 {
		word, rest = text[:i], strings.TrimSpace(text[i:])
	}
	switch {
	case strings.HasPrefix(text, "//"):
		text = text[1:]
	case !strings.HasPrefix(text, "/") || strings.Contains(word[1:], "/"):
		// Plain text, or a path such as /etc/hosts: not a command.
	case word == "/help":
		c.clearStatus()
		fmt.Fprintln(c.m.Stderr, chatCommands)
		return control.MessageRequest{}, nil
	case word == "/attach":
		path, caption, err := splitPath(rest)
		if err != nil {
			return req, err
		}
		req.Files, err = readFiles([]string{path}, c.cfg.MediaMaxBytes)
		if err != nil {
			return req, err
		}
		if caption == "" {
			return req, nil
		}
		text = caption
	case word == "/reply":
		id, reply := rest, ""
		if i := strings.IndexFunc(rest, unicode.IsSpace); i >= 0 {
			id, reply = rest[:i], rest[i:]
		}
		if err := local.ValidateID(id); err != nil {
			return req, fmt.Errorf("/reply ID TEXT: %w", err)
		}
		req.ReplyTo, text = id, strings.TrimSpace(reply)
		if text == "" {
			return req, errors.New("/reply ID TEXT: no text")
		}
	default:
		return req, fmt.Errorf("unknown command %s: /help lists them, and //TEXT sends a message starting with '/'", word)
	}
	if err := local.ValidateText(text); err != nil {
		return req, err
	}
	req.Text = text
	return req, nil
}

// splitPath splits "/attach"'s arguments into the path (in double quotes
// when it has spaces) and the caption after it.
func splitPath(s string) (path, rest string, err error) {
	if quoted, ok := strings.CutPrefix(s, `"`); ok {
		path, rest, ok = strings.Cut(quoted, `"`)
		if !ok {
			return "", "", errors.New(`/attach "PATH: the closing quote is missing`)
		}
	} else if i := strings.IndexFunc(s, unicode.IsSpace); i >= 0 {
		path, rest = s[:i], s[i:]
	} else {
		path = s
	}
	if path == "" {
		return "", "", errors.New("/attach PATH [CAPTION]: which file?")
	}
	return path, strings.TrimSpace(rest), nil
}

// show displays one event of the chat.
func (c *chatSession) show(ev local.Event) error {
	name := c.cfg.AssistantName
	switch ev.Type {
	case local.EventReply:
		c.clearStatus()
		printReply(c.m.Stdout, ev.Text)
	case local.EventFile:
		c.clearStatus()
		if !c.saver.show(c.m.Stdout, c.m.Stderr, name, ev) {
			c.unsaved++
		}
	case local.EventReaction:
		c.clearStatus()
		fmt.Fprintln(c.m.Stderr, reactionNote(name, ev))
	case local.EventTyping:
		switch {
		case !ev.Typing:
			c.clearStatus()
			c.typingLine = false
		case c.status:
			fmt.Fprintf(c.m.Stderr, "\r\x1b[K%s is typing…", name)
			c.typing = true
		case !c.typingLine:
			// Not a terminal: a line, once until typing stops.
			fmt.Fprintf(c.m.Stderr, "· %s is typing…\n", name)
			c.typingLine = true
		}
	case local.EventDone:
		c.clearStatus()
		c.typingLine = false
		if ev.Error != "" {
			c.failures++
			fmt.Fprintf(c.m.Stderr, "no answer: %s\n", sanitize.Terminal(ev.Error)) // R10
		}
		if c.pending > 0 && ev.Covers(c.pending) {
			c.pending = 0
		}
	case local.EventLagged:
		c.clearStatus()
		return fmt.Errorf("lost events: %s; start 'nanoclaw chat' again", sanitize.Terminal(ev.Error))
	}
	return nil
}

// clearStatus removes the transient typing line.
func (c *chatSession) clearStatus() {
	if c.typing {
		fmt.Fprint(c.m.Stderr, "\r\x1b[K")
		c.typing = false
	}
}

// result is the chat's outcome: with piped input, a line not sent or a
// failed run makes it fail (a person at a terminal has seen each).
func (c *chatSession) result() error {
	c.clearStatus()
	if c.interactive || c.failures+c.notSent+c.unsaved == 0 {
		return nil
	}
	var parts []string
	if c.notSent > 0 {
		parts = append(parts, fmt.Sprintf("%d message(s) not sent", c.notSent))
	}
	if c.unsaved > 0 {
		parts = append(parts, fmt.Sprintf("%d file(s) not saved", c.unsaved))
	}
	if c.failures > 0 {
		parts = append(parts, fmt.Sprintf("%d run(s) failed", c.failures))
	}
	return fmt.Errorf("%s (see above)", strings.Join(parts, ", "))
}
