package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel/telegram/faketelegram"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
)

// tgCodeRE finds the one-time pairing code in `pair telegram`'s output.
var tgCodeRE = regexp.MustCompile(`\b[A-Z2-9]{4}-[A-Z2-9]{4}\b`)

// Through the real daemon, Claude Code, the fake model and a fake Bot API
// on loopback: pairing with a one-time code (a stranger cannot claim
// main), the owner's private chat answered, a group message without the
// trigger kept as context and one with it answered quoting it, a photo in
// and a file out, a 429 waited out, a dropped connection resumed — and no
// answer sent twice.
func TestTelegramEndToEnd(t *testing.T) {
	tg := faketelegram.New(faketelegram.Options{})
	defer tg.Close()
	w := newWorld(t, "podman", "TELEGRAM_API_URL="+tg.URL())
	owner := faketelegram.User{ID: 4242, FirstName: "Olga", Username: "olga"}
	stranger := faketelegram.User{ID: 777, FirstName: "Eve"}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	wait := func(what string, cond func() bool) {
		t.Helper()
		if err := tg.Wait(ctx, what, cond); err != nil {
			t.Fatalf("%v\nsent: %+v\ndaemon:\n%s", err, tg.Sent(), w.d.raw.String())
		}
	}
	sentTo := func(chat int64, method string) []faketelegram.Sent {
		return slices.DeleteFunc(tg.Sent(), func(s faketelegram.Sent) bool { return s.Chat != chat || s.Method != method })
	}

	// Pairing, with the daemon down: the code comes on stderr; a stranger's
	// message is no code; the owner's is.
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(tg.Token()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pair := exec.CommandContext(ctx, binary, "pair", "telegram", "--token-file", tokenFile, "--timeout", "15s")
	pair.Env = w.env
	var out bytes.Buffer
	pair.Stdout = &out
	stderr, _ := pair.StderrPipe()
	if err := pair.Start(); err != nil {
		t.Fatal(err)
	}
	var code string
	var said strings.Builder
	for sc := bufio.NewScanner(stderr); code == "" && sc.Scan(); {
		said.WriteString(sc.Text() + "\n")
		code = tgCodeRE.FindString(sc.Text())
	}
	if code == "" || strings.Contains(said.String(), tg.Token()) {
		t.Fatalf("pair telegram showed no code, or the token:\n%s", said.String())
	}
	go func() { _, _ = bufio.NewReader(stderr).WriteTo(&said) }()
	tg.Post(faketelegram.In{Chat: faketelegram.Private(stranger), From: stranger, Text: "ABCD-EFGH"})
	tg.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: strings.ToLower(code)})
	if err := pair.Wait(); err != nil || !strings.Contains(out.String(), "Paired with the Telegram bot @"+tg.Username()) ||
		!strings.Contains(out.String(), "privacy mode") {
		t.Fatalf("pair telegram: %v\nstdout: %s\nstderr: %s\ncalls: %+v", err, out.String(), said.String(), tg.Calls())
	}

	w.start()
	defer w.stop()

	// The owner's private chat is main's: answered, reacted to.
	w.fake.Script(fakeapi.Text("hello Olga"))
	hi := tg.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "hi there"})
	wait("the owner's answer", func() bool {
		return slices.ContainsFunc(sentTo(owner.ID, "sendMessage"), func(s faketelegram.Sent) bool { return s.Shown == "Andy: hello Olga" })
	})
	wait("the owner's message reacted to", func() bool {
		return slices.ContainsFunc(sentTo(owner.ID, "setMessageReaction"), func(s faketelegram.Sent) bool {
			return s.Target == hi.MessageID && s.Emoji == "👍"
		})
	})

	// A stranger is kept as an unregistered chat and gets no answer; the
	// bot's group shows up to be registered.
	tg.Post(faketelegram.In{Chat: faketelegram.Private(stranger), From: stranger, Text: "let me in"})
	family := faketelegram.Chat{ID: -1001234567, Type: "supergroup", Title: "Family"}
	tg.Post(faketelegram.In{Chat: family, From: stranger, Text: "hello everyone"})
	var avail string
	wait("the group in groups available", func() bool {
		avail, _, _ = w.nanoclaw("groups", "available")
		return strings.Contains(avail, "tg:-1001234567") && strings.Contains(avail, "Family") && strings.Contains(avail, "tg:777")
	})
	if out, errOut, code := w.nanoclaw("groups", "add", "family", "--jid", "tg:-1001234567", "--name", "Family"); code != 0 {
		t.Fatalf("groups add: %d %s %s", code, out, errOut)
	}

	// In the group: without the trigger, context; with it, an answer that
	// quotes it.
	tg.Post(faketelegram.In{Chat: family, From: stranger, Text: "what a lovely day"})
	w.fake.Script(fakeapi.Text("family answer"))
	asked := tg.Post(faketelegram.In{Chat: family, From: stranger, Text: "@Andy what's for dinner?"})
	wait("the group's answer", func() bool {
		return slices.ContainsFunc(sentTo(family.ID, "sendMessage"), func(s faketelegram.Sent) bool {
			return s.Shown == "Andy: family answer" && s.ReplyTo == asked.MessageID
		})
	})
	last := w.fake.MainRequests()[len(w.fake.MainRequests())-1].LastUserText()
	if !strings.Contains(last, "what a lovely day") || !strings.Contains(last, "what&apos;s for dinner?") {
		t.Errorf("the group's prompt lacks its catch-up:\n%s", last)
	}

	// A photo in, read by the model, and sent back as a file.
	pic := testPNG(t)
	var seen string
	w.fake.Script(
		fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
			m := mediaPathRE.FindStringSubmatch(r.LastUserText())
			if m == nil {
				return fakeapi.Text("NO ATTACHMENT")
			}
			seen = m[1]
			return fakeapi.ToolUse("Read", map[string]any{"file_path": seen})
		}),
		fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
			for _, res := range r.ToolResults() {
				for _, m := range res.Media {
					if data, _ := base64.StdEncoding.DecodeString(m.Data); m.MediaType == "image/png" && len(data) > 0 {
						return fakeapi.ToolUse("mcp__nanoclaw__send_file", map[string]any{"path": seen, "caption": "your photo"})
					}
				}
			}
			return fakeapi.Text("NO IMAGE")
		}),
		fakeapi.Text("sent it back"),
	)
	tg.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "look", Media: &faketelegram.Media{Kind: "photo", MIME: "image/png", Data: pic}})
	wait("the photo sent back", func() bool {
		return slices.ContainsFunc(sentTo(owner.ID, "sendPhoto"), func(s faketelegram.Sent) bool { return bytes.Equal(s.File, pic) })
	})
	wait("the answer after the file", func() bool {
		return slices.ContainsFunc(sentTo(owner.ID, "sendMessage"), func(s faketelegram.Sent) bool { return s.Shown == "Andy: sent it back" })
	})

	// A flood answer (429, retry after 2 s) is waited out, and the reply
	// goes once.
	tg.Flood(1, 2*time.Second)
	w.fake.Script(fakeapi.Text("after the flood"))
	start := time.Now()
	tg.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "still there?"})
	wait("the reply after the flood", func() bool {
		return slices.ContainsFunc(sentTo(owner.ID, "sendMessage"), func(s faketelegram.Sent) bool { return s.Shown == "Andy: after the flood" })
	})
	if i := slices.IndexFunc(tg.Sent(), func(s faketelegram.Sent) bool { return s.Shown == "Andy: after the flood" }); tg.Sent()[i].Time.Sub(start) < 2*time.Second {
		t.Errorf("the reply went %v after the message, before the 2 s Telegram asked for", tg.Sent()[i].Time.Sub(start))
	}

	// A dropped connection: the bot comes back, and the message sent
	// meanwhile is answered once.
	tg.Drop()
	w.fake.Script(fakeapi.Text("back again"))
	tg.Post(faketelegram.In{Chat: faketelegram.Private(owner), From: owner, Text: "are you back?"})
	wait("the reply after the drop", func() bool {
		return slices.ContainsFunc(sentTo(owner.ID, "sendMessage"), func(s faketelegram.Sent) bool { return s.Shown == "Andy: back again" })
	})

	// Nobody else was answered, and nothing twice.
	if got := sentTo(stranger.ID, "sendMessage"); len(got) != 0 {
		t.Errorf("the stranger was answered: %+v", got)
	}
	seenText := map[string]bool{}
	for _, s := range tg.Sent() {
		if s.Method == "sendMessage" && strings.HasPrefix(s.Shown, "Andy: ") {
			if seenText[s.Shown] {
				t.Errorf("sent twice: %q\nsent: %+v\ncalls: %+v\ndaemon:\n%s", s.Shown, tg.Sent(), tg.Calls(), w.d.raw.String())
			}
			seenText[s.Shown] = true
		}
	}
}
