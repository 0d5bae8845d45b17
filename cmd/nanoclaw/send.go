package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
only once, and a retry of a stored one succeeds without storing anything.

--file attaches a file (a photo, a voice note, a PDF…; repeat it for more,
at most 10, together at most MEDIA_MAX_BYTES); the text is then an optional
caption, given as the arguments or with --caption. --reply-to quotes an
earlier message of the chat by its id, which this command prints when it
stores one. Files the assistant sends back during --wait are saved into
--save-dir (never over an existing file: "name (2).ext" instead) and their
paths printed.`

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
	fs := m.flagSet("send", "[--group FOLDER] [--sender NAME] [--id ID] [--file PATH]... [--caption TEXT] [--reply-to ID] [--wait[=DURATION]] [--save-dir DIR] [TEXT... | -]", sendHelp)
	group := fs.String("group", "main", "the group folder; the message goes to chat local:FOLDER")
	sender := fs.String("sender", "", "your name in the chat (default: your user name)")
	id := fs.String("id", "", "the message's id, for safe retries: letters, digits, '.', '_', ':', '-' (default: a random one)")
	wait := &optionalDuration{def: defaultWait}
	fs.Var(wait, "wait", "print the replies and end when the run ends; --wait=DURATION bounds the wait (bare: 5m)")
	var files pathList
	fs.Var(&files, "file", "attach the file at `PATH` (repeat for more); the text is then optional")
	caption := fs.String("caption", "", "the attached files' caption, instead of the arguments")
	replyTo := fs.String("reply-to", "", "the `ID` of an earlier message of the chat this one replies to")
	saveDir := fs.String("save-dir", ".", "with --wait, save the files the assistant sends into `DIR`")
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
	if *replyTo != "" {
		if err := local.ValidateID(*replyTo); err != nil {
			return usagef("--reply-to: %v", err)
		}
	}
	words := fs.Args()
	if before := argBefore(args, len(words)); len(words) > 0 && (before == "--wait" || before == "-wait") {
		if _, err := time.ParseDuration(words[0]); err == nil {
			return usagef("--wait takes its duration after '=': write --wait=%s (to send the text %q alone, pass it on stdin)", words[0], words[0])
		}
	}
	var text string
	switch {
	case *caption != "" && len(files) == 0:
		return usagef("--caption goes with --file; without a file, give the text as arguments")
	case *caption != "" && len(words) > 0:
		return usagef("give the caption either with --caption or as arguments, not both")
	case *caption != "":
		text, err = checkText(*caption)
	case len(files) > 0 && len(words) == 0:
		// A file needs no caption: stdin is not read for one.
	default:
		text, err = messageText(m, words)
	}
	if err != nil {
		return err
	}
	if wait.set {
		if err := checkSaveDir(*saveDir); err != nil {
			return err
		}
	}

	cfg, err := config.Load(m.Getenv)
	if err != nil {
		return err
	}
	attached, err := readFiles(files, cfg.MediaMaxBytes)
	if err != nil {
		return err
	}
	cl := control.Dial(cfg.ControlSocket())
	req := control.MessageRequest{Chat: chat, Sender: name, Text: text, ID: *id, ReplyTo: *replyTo, Files: attached}
	if !wait.set {
		r, err := cl.PostMessage(ctx, req)
		if err != nil {
			return err
		}
		switch {
		case r.Duplicate:
			fmt.Fprintln(m.Stderr, duplicateNote(r.ID, r.Chat))
		case r.Taken != "":
			fmt.Fprintln(m.Stderr, takenNote(r.Taken))
		case !r.WillAnswer:
			fmt.Fprintln(m.Stderr, notAnsweredNote(cfg))
		default:
			fmt.Fprintln(m.Stderr, storedNote(r.Chat, r.Seq, r.ID))
		}
		return nil
	}
	saver := &fileSaver{dir: *saveDir, from: local.FilesDir(cfg.Home), max: cfg.MediaMaxBytes}

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
	unsaved := 0
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
			if ev.Taken != "" {
				fmt.Fprintln(m.Stderr, takenNote(ev.Taken))
				return nil
			}
			if !ev.WillAnswer {
				fmt.Fprintln(m.Stderr, notAnsweredNote(cfg))
				return nil
			}
			fmt.Fprintln(m.Stderr, storedNote(ev.Chat, ev.Seq, ev.ID))
		case local.EventReply:
			printReply(m.Stdout, ev.Text)
		case local.EventFile:
			if !saver.show(m.Stdout, m.Stderr, cfg.AssistantName, ev) {
				unsaved++
			}
		case local.EventReaction:
			fmt.Fprintln(m.Stderr, reactionNote(cfg.AssistantName, ev))
		case local.EventDone:
			if ev.Error != "" {
				return fmt.Errorf("no answer: %s", sanitize.Terminal(ev.Error))
			}
			if unsaved > 0 {
				return fmt.Errorf("%d file(s) the assistant sent could not be saved (see above)", unsaved)
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
	return checkText(text)
}

// checkText trims a message's text and validates it.
func checkText(text string) (string, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return "", usagef("no message: give it as arguments or on stdin")
	}
	if err := local.ValidateText(text); err != nil {
		return "", usagef("%v", err)
	}
	return text, nil
}

// storedNote tells where a message was stored, with the id a later
// message's --reply-to names it by.
func storedNote(chat string, seq int64, id string) string {
	return fmt.Sprintf("stored in %s as message %d (id %s)", chat, seq, id)
}

// notAnsweredNote explains a stored message that starts no run.
func notAnsweredNote(cfg *config.Config) string {
	return fmt.Sprintf("stored; it does not start with %s, so no reply — it will be part of the next catch-up", cfg.Trigger())
}

// takenNote is what nanoclaw did with a message it took itself: the
// owner's answer to an egress question, not a message for the assistant.
func takenNote(answer string) string {
	return "taken by nanoclaw, not the assistant: " + sanitize.Terminal(answer)
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

// pathList is a flag that may be given many times: each a path.
type pathList []string

func (p *pathList) String() string { return strings.Join(*p, ", ") }

func (p *pathList) Set(v string) error {
	if v == "" {
		return errors.New("empty path")
	}
	*p = append(*p, v)
	return nil
}

// checkSaveDir checks --save-dir before anything is sent: a reply's file
// must not be lost to a typo.
func checkSaveDir(dir string) error {
	info, err := os.Stat(dir)
	if err != nil {
		return usagef("--save-dir: %v", err)
	}
	if !info.IsDir() {
		return usagef("--save-dir: %s is not a directory", dir)
	}
	return nil
}

// readFiles reads the files to attach: each and all together at most max
// bytes (MEDIA_MAX_BYTES), refused before they are read when larger.
func readFiles(paths []string, max int64) ([]local.DraftFile, error) {
	if len(paths) > local.MaxFiles {
		return nil, usagef("%d files: at most %d in one message", len(paths), local.MaxFiles)
	}
	var files []local.DraftFile
	var total int64
	for _, p := range paths {
		f, err := readFile(p, max-total, max)
		if err != nil {
			return nil, err
		}
		total += int64(len(f.Data))
		files = append(files, f)
	}
	return files, nil
}

// readFile reads the file at path to attach it: at most left bytes, what
// is left of the media limit max for one message's files.
func readFile(path string, left, max int64) (local.DraftFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return local.DraftFile{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	switch {
	case err != nil:
		return local.DraftFile{}, err
	case info.IsDir():
		return local.DraftFile{}, fmt.Errorf("%s is a directory: attach the files in it one by one", path)
	case !info.Mode().IsRegular():
		return local.DraftFile{}, fmt.Errorf("%s is not a regular file (%s)", path, info.Mode().Type())
	case info.Size() == 0:
		return local.DraftFile{}, fmt.Errorf("%s is empty", path)
	case info.Size() > left:
		return local.DraftFile{}, tooLarge(path, info.Size(), left, max)
	}
	// The file may grow while it is read: read one byte past the limit to
	// see it.
	data, err := io.ReadAll(io.LimitReader(f, left+1))
	if err != nil {
		return local.DraftFile{}, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > left {
		return local.DraftFile{}, tooLarge(path, int64(len(data)), left, max)
	}
	// The name is shown to the assistant as the user's; the daemon never
	// uses it as a path.
	name := strings.ToValidUTF8(filepath.Base(path), "\uFFFD")
	return local.DraftFile{Name: sanitize.Truncate(name, local.MaxFileNameBytes), Data: data}, nil
}

// tooLarge is the error of a file over what may still be attached.
func tooLarge(path string, size, left, max int64) error {
	if left == max {
		return fmt.Errorf("%s is %d bytes, more than MEDIA_MAX_BYTES (%d bytes): send a smaller one", path, size, max)
	}
	return fmt.Errorf("%s is %d bytes, more than the %d bytes left of MEDIA_MAX_BYTES (%d bytes for one message's files): send it in a message of its own", path, size, left, max)
}

// fileSaver saves the files the assistant sends, as file events announce
// them, from the daemon's files directory into the user's.
type fileSaver struct {
	dir  string // where files are saved: --save-dir
	from string // the daemon's local.FilesDir: the only place files are copied from
	max  int64  // MEDIA_MAX_BYTES: no larger file is copied
}

// show saves the file of event ev and prints where, with its caption, to
// stdout; a file it cannot save it reports to stderr and returns false.
func (s *fileSaver) show(stdout, stderr io.Writer, assistant string, ev local.Event) bool {
	name := sanitize.Terminal(local.CleanFileName(ev.Name)) // R10: the model chose it
	path, err := s.save(ev)
	if err != nil {
		fmt.Fprintf(stderr, "%s sent %s, which could not be saved: %s\n", assistant, name, sanitize.Terminal(err.Error()))
		return false
	}
	fmt.Fprintf(stdout, "%s sent %s, saved as %s\n", assistant, name, sanitize.Terminal(path))
	if ev.Text != "" {
		printReply(stdout, ev.Text)
	}
	return true
}

// savedPrefix starts the name of every file saved from a chat.
const savedPrefix = "nanoclaw-"

// save copies the file of event ev into s.dir under its cleaned name,
// prefixed, or
// "name (2).ext" and so on when that exists: nothing is overwritten. Only a
// regular file directly in s.from is copied, whatever path the event
// names.
func (s *fileSaver) save(ev local.Event) (string, error) {
	if filepath.Dir(ev.Path) != filepath.Clean(s.from) {
		return "", fmt.Errorf("the daemon named %q, outside its files directory %s", ev.Path, s.from)
	}
	src, err := os.OpenRoot(s.from)
	if err != nil {
		return "", err
	}
	defer src.Close()
	in, err := src.Open(filepath.Base(ev.Path))
	if err != nil {
		return "", err
	}
	defer in.Close()
	if info, err := in.Stat(); err != nil || !info.Mode().IsRegular() || info.Size() > s.max {
		return "", fmt.Errorf("%s is not a regular file of at most %d bytes", ev.Path, s.max)
	}
	dst, err := os.OpenRoot(s.dir)
	if err != nil {
		return "", err
	}
	defer dst.Close()
	// Prefixed: a name the agent chose must not become a file that tools
	// in this directory load on their own (CLAUDE.md, conftest.py,
	// Makefile, package.json…).
	name := savedPrefix + local.CleanFileName(ev.Name)
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	for n := 1; n <= 1000; n++ {
		if n > 1 {
			name = fmt.Sprintf("%s (%d)%s", base, n, ext)
		}
		out, err := dst.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		written, err := io.Copy(out, io.LimitReader(in, s.max+1))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err == nil && written > s.max {
			err = fmt.Errorf("%s grew past %d bytes while it was copied", ev.Path, s.max)
		}
		if err != nil {
			dst.Remove(name)
			return "", err
		}
		return filepath.Join(s.dir, name), nil
	}
	return "", fmt.Errorf("%s and 999 more names like it exist in %s already", local.CleanFileName(ev.Name), s.dir)
}

// reactionNote is the line that shows a reaction of the assistant.
func reactionNote(assistant string, ev local.Event) string {
	if ev.Emoji == "" {
		return fmt.Sprintf("· %s removed the reaction on %s", assistant, sanitize.Terminal(ev.ID))
	}
	return fmt.Sprintf("· %s reacted %s to %s", assistant, sanitize.Terminal(ev.Emoji), sanitize.Terminal(ev.ID))
}
