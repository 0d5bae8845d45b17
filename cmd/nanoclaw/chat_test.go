package main

import (
	"bytes"
	"io"
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
	if errOut != "" {
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
	// Without a terminal on stderr, nothing transient is written.
	errb.Reset()
	c.status = false
	c.show(local.Event{Type: local.EventTyping, Typing: true})
	c.show(local.Event{Type: local.EventTyping})
	if errb.Len() != 0 {
		t.Errorf("status written to a non-terminal: %q", errb.String())
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
