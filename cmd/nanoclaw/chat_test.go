package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/control/controltest"
)

func TestChatPipedInput(t *testing.T) {
	d := controltest.Start(t)
	in := "hello\n\n   \ntwice\n"
	code, out, errOut := runWith(t, d.Home, strings.NewReader(in), "chat", "--sender", "alice")
	if code != cli.ExitOK {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
	// After the end of input it waited for both runs.
	want := "Andy: echo hello\nAndy: echo twice\nAndy: and again\n"
	if out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	msgs := d.Router.Messages()
	if len(msgs) != 2 || msgs[0].Text != "hello" || msgs[1].Text != "twice" || msgs[1].SenderName != "alice" {
		t.Errorf("stored %+v (empty lines must be skipped)", msgs)
	}
	// Typing shows as a line a run, stderr not being a terminal.
	if errOut != "· Andy is typing…\n· Andy is typing…\n" {
		t.Errorf("stderr %q", errOut)
	}
}

func TestChatQuitAndUntriggered(t *testing.T) {
	d := controltest.Start(t)
	in := "not for Andy\n@Andy yes\n/quit\nnever sent\n"
	code, out, errOut := runWith(t, d.Home, strings.NewReader(in), "chat", "--group", "work")
	if code != cli.ExitOK || out != "Andy: echo @Andy yes\n" {
		t.Fatalf("exit %d stdout %q stderr %q", code, out, errOut)
	}
	if !strings.Contains(errOut, "stored; it does not start with @Andy, so no reply") {
		t.Errorf("stderr %q", errOut)
	}
	for _, m := range d.Router.Messages() {
		if m.Text == "never sent" {
			t.Error("a line after /quit was sent")
		}
		if m.ChatJID != "local:work" {
			t.Errorf("message in %s", m.ChatJID)
		}
	}
}

func TestChatFailures(t *testing.T) {
	d := controltest.Start(t)
	code, out, errOut := runWith(t, d.Home, strings.NewReader("reject this\nplease fail\nhello\n"), "chat")
	if code != cli.ExitFailure {
		t.Errorf("exit %d, want 1", code)
	}
	if out != "Andy: echo hello\n" {
		t.Errorf("stdout %q: the chat should go on after a failure", out)
	}
	for _, want := range []string{
		"not sent: store message",
		"database is locked",
		"no answer: " + controltest.RunError,
		"nanoclaw chat: 1 message(s) not sent, 1 run(s) failed",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}

	start := time.Now()
	code, _, errOut = runWith(t, d.Home, strings.NewReader("hang\n"), "chat", "--timeout", "300ms")
	if code != cli.ExitFailure || !strings.Contains(errOut, "gave up waiting for the outstanding reply after 300ms") {
		t.Errorf("hang: exit %d stderr %q", code, errOut)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("--timeout 300ms took %s", time.Since(start))
	}
}

func TestChatEndsWhenDaemonStops(t *testing.T) {
	d := controltest.Start(t)
	pr, pw := io.Pipe() // input that never ends
	defer pw.Close()
	go func() {
		for d.Local.Subscribers("local:main") == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		d.Local.Close()
	}()
	code, _, errOut := runWith(t, d.Home, pr, "chat")
	if code != cli.ExitFailure || !strings.Contains(errOut, "nanoclaw ended the chat (did it stop?)") {
		t.Errorf("exit %d stderr %q", code, errOut)
	}
}

func TestChatUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"chat", "hello"},
		{"chat", "--timeout", "0s"},
		{"chat", "--group", "../etc"},
		{"chat", "--sender", ""},
	} {
		code, out, errOut := runWith(t, t.TempDir(), strings.NewReader(""), args...)
		if args[len(args)-1] == "" { // an empty --sender means the default
			if code != cli.ExitFailure || !strings.Contains(errOut, "not running") {
				t.Errorf("%q: exit %d stderr %q", args, code, errOut)
			}
			continue
		}
		if code != cli.ExitUsage || out != "" {
			t.Errorf("%q: exit %d stdout %q stderr %q", args, code, out, errOut)
		}
	}
}

func TestChatTypingStatus(t *testing.T) {
	var errb, out bytes.Buffer
	c := &chatSession{m: &Main{Stdout: &out, Stderr: &errb}, cfg: &config.Config{AssistantName: "Andy"}, status: true}
	c.show(local.Event{Type: local.EventTyping, Typing: true})
	if errb.String() != "\r\x1b[KAndy is typing…" {
		t.Errorf("typing status %q", errb.String())
	}
	errb.Reset()
	c.show(local.Event{Type: local.EventReply, Text: "Andy: hi"})
	if errb.String() != "\r\x1b[K" || out.String() != "Andy: hi\n" {
		t.Errorf("after reply: stderr %q stdout %q", errb.String(), out.String())
	}
	// Without a terminal on stderr, nothing transient is written: a line
	// says typing started, once until it stops.
	errb.Reset()
	c.status = false
	c.show(local.Event{Type: local.EventTyping, Typing: true})
	c.show(local.Event{Type: local.EventTyping, Typing: true})
	c.show(local.Event{Type: local.EventTyping})
	c.show(local.Event{Type: local.EventTyping, Typing: true})
	if errb.String() != "· Andy is typing…\n· Andy is typing…\n" {
		t.Errorf("typing on a non-terminal: %q", errb.String())
	}
}

func TestChatLineTooLong(t *testing.T) {
	d := controltest.Start(t)
	in := "hello\n" + strings.Repeat("x", local.MaxTextBytes+10) + "\nafter\n"
	code, out, errOut := runWith(t, d.Home, strings.NewReader(in), "chat")
	if code != cli.ExitFailure || out != "Andy: echo hello\n" || !strings.Contains(errOut, "input ended: a line is longer than 65536 bytes") {
		t.Errorf("exit %d stdout %q stderr %q", code, out, errOut)
	}
}

// R10: replies and run errors in the chat reach the terminal without the
// model's escape sequences (OSC 52 clipboard write, CSI screen control).
func TestChatStripsEscapeSequences(t *testing.T) {
	var errb, out bytes.Buffer
	c := &chatSession{m: &Main{Stdout: &out, Stderr: &errb}, cfg: &config.Config{AssistantName: "Andy"}}
	c.show(local.Event{Type: local.EventReply, Text: "Andy: \x1b]52;c;cm0gLXJmIH4K\x07done\x1b[2J\x1b[H\n"})
	c.show(local.Event{Type: local.EventDone, UpTo: 1, Error: "the agent failed: \x1b]0;title\x1b\\boom\r\u202Eok"})
	if out.String() != "Andy: done\n" {
		t.Errorf("stdout %q", out.String())
	}
	if errb.String() != "no answer: the agent failed: boomok\n" {
		t.Errorf("stderr %q", errb.String())
	}
}

func TestChatCommands(t *testing.T) {
	d := controltest.Start(t)
	dir := t.TempDir()
	cat := writeFile(t, dir, "cat.png", png)
	spaced := writeFile(t, dir, "my notes.txt", []byte("milk\n"))
	in := strings.Join([]string{
		"/help",
		"/attach " + cat + " look at her",
		`/attach "` + spaced + `"`,
		"/reply\tearlier-1 yes please",
		"//slash at the start",
		"/etc/hosts is broken",
		"/bogus",
		"/attach " + filepath.Join(dir, "missing.png"),
		"/reply bad!id yes",
		"/attach",
	}, "\n") + "\n"
	code, out, errOut := runWith(t, d.Home, strings.NewReader(in), "chat")
	if code != cli.ExitFailure || !strings.Contains(errOut, "nanoclaw chat: 4 message(s) not sent (see above)") {
		t.Errorf("exit %d stderr %q", code, errOut)
	}
	msgs := d.Router.Messages()
	if len(msgs) != 5 {
		t.Fatalf("stored %d messages: %+v", len(msgs), msgs)
	}
	if m := msgs[0]; m.Text != "look at her" || len(m.Attachments) != 1 || m.Attachments[0].Kind != "image" || m.Attachments[0].FileName != "cat.png" {
		t.Errorf("/attach with a caption: %+v", m)
	}
	if m := msgs[1]; m.Text != "" || len(m.Attachments) != 1 || m.Attachments[0].FileName != "my notes.txt" {
		t.Errorf("/attach of a quoted path: %+v", m)
	}
	if m := msgs[2]; m.Text != "yes please" || m.ReplyTo != "earlier-1" {
		t.Errorf("/reply: %+v", m)
	}
	if msgs[3].Text != "/slash at the start" || msgs[4].Text != "/etc/hosts is broken" {
		t.Errorf("texts starting with '/': %q, %q", msgs[3].Text, msgs[4].Text)
	}
	for _, want := range []string{
		"/attach PATH [CAPTION]  send a file",
		"· sent as message " + msgs[0].ID + "\n",
		"· sent as message " + msgs[2].ID + "\n",
		"not sent: unknown command /bogus: /help lists them",
		"not sent: open " + filepath.Join(dir, "missing.png") + ": no such file or directory",
		"not sent: /reply ID TEXT: message id",
		"not sent: /attach PATH [CAPTION]: which file?",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
	// Each stored message started a run, and the chat waited for them all.
	if strings.Count(out, "Andy: echo") != 5 {
		t.Errorf("stdout %q", out)
	}
}

func TestChatSavesFilesAndShowsReactions(t *testing.T) {
	d := controltest.Start(t)
	saveDir := t.TempDir()
	code, out, errOut := runWith(t, d.Home, strings.NewReader("react file\n"), "chat", "--save-dir", saveDir)
	if code != cli.ExitOK {
		t.Fatalf("exit %d stderr %q", code, errOut)
	}
	saved := filepath.Join(saveDir, savedPrefix+controltest.FileName)
	if want := "Andy: echo react file\nAndy sent report.txt, saved as " + saved + "\n" + controltest.FileCaption + "\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if data, err := os.ReadFile(saved); err != nil || string(data) != controltest.FileData {
		t.Errorf("saved: %q, %v", data, err)
	}
	id := d.Router.Messages()[0].ID
	if want := "· Andy reacted 👀 to " + id + "\n· Andy is typing…\n· Andy reacted ✅ to " + id + "\n"; errOut != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}

	code, _, errOut = runWith(t, d.Home, strings.NewReader("hi\n"), "chat", "--save-dir", filepath.Join(saveDir, "nowhere"))
	if code != cli.ExitUsage || !strings.Contains(errOut, "--save-dir: stat") {
		t.Errorf("missing --save-dir: exit %d stderr %q", code, errOut)
	}
}

// R10: what the model chose for a file's name and a reaction reaches the
// terminal without escape sequences.
func TestChatFileAndReactionEventsStripped(t *testing.T) {
	var errb, out bytes.Buffer
	c := &chatSession{m: &Main{Stdout: &out, Stderr: &errb}, cfg: &config.Config{AssistantName: "Andy"},
		saver: &fileSaver{dir: t.TempDir(), from: t.TempDir(), max: 10}}
	c.show(local.Event{Type: local.EventReaction, ID: "m-1", Emoji: "\x1b]52;c;eA==\x07👀"})
	c.show(local.Event{Type: local.EventFile, Name: "a\x1b[2Jb.txt", Path: "/etc/passwd"})
	if want := "· Andy reacted 👀 to m-1\nAndy sent a[2Jb.txt, which could not be saved: "; !strings.HasPrefix(errb.String(), want) {
		t.Errorf("stderr %q, want it to start with %q", errb.String(), want)
	}
	if c.unsaved != 1 || out.Len() != 0 {
		t.Errorf("unsaved %d, stdout %q", c.unsaved, out.String())
	}
}
