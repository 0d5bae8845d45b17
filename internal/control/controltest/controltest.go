// Package controltest is for tests: a scripted fake router for the local
// channel, and a control server on a temporary socket that uses it, so the
// control API and the CLI commands on it can be tested without a daemon.
package controltest

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/control"
)

// quiet drops the logs of the expected failures the script provokes.
var quiet = slog.New(slog.DiscardHandler)

// Trigger is the fake router's trigger word.
const Trigger = "@Andy"

// RunError is the error of a run the script makes fail.
const RunError = "agent crashed: exit status 3"

// The file a "file" message makes the fake agent send.
const (
	FileName    = "report.txt"
	FileData    = "the quarterly report\n"
	FileCaption = "Andy: here it is"
)

// Router is a fake of the real router, as far as the local channel sees it:
// it "stores" each message with the next position of its chat, returns that
// position and, for a message that triggers (every message in local:main,
// "@Andy …" elsewhere), runs a scripted agent in a goroutine. Like the real
// one it drops, storing nothing and without an error, messages of
// unregistered chats (here: folders starting with "unknown") and a message
// whose id its chat has already stored. The message text
// picks the script:
//
//	contains "reject"   OnMessage fails (nothing stored)
//	contains "fail"     typing, then the run fails with RunError
//	contains "hang"     the run never ends
//	contains "twice"    two replies
//	contains "slow"     first an earlier run's done event (UpTo one less), then the reply
//	contains "file"     also sends the file FileName (FileData, caption FileCaption)
//	contains "react"    also reacts 👀 to the message first and ✅ at the end
//	contains "quote"    the reply quotes the message
//	otherwise           typing on, reply "Andy: echo <text>", typing off, done
type Router struct {
	ch *local.Channel

	mu   sync.Mutex
	ids  map[string]bool // chat + " " + id of every stored message
	seq  map[string]int64
	last map[string]chan struct{} // closed when the chat's latest run ends
	msgs []channel.Message
	wg   sync.WaitGroup
}

var _ channel.Handler = (*Router)(nil)

// NewRouter makes a fake router that reports to ch.
func NewRouter(ch *local.Channel) *Router {
	return &Router{ch: ch, ids: make(map[string]bool), seq: make(map[string]int64), last: make(map[string]chan struct{})}
}

// OnMessage "stores" m and starts its scripted run.
func (r *Router) OnMessage(ctx context.Context, ch channel.Channel, m channel.Message) (channel.Stored, error) {
	if strings.Contains(m.Text, "reject") {
		return channel.Stored{}, errors.New("database is locked")
	}
	if strings.HasPrefix(m.ChatJID, local.Prefix+"unknown") {
		return channel.Stored{}, nil
	}
	will := m.ChatJID == local.MainChat || strings.HasPrefix(m.Text, Trigger)
	r.mu.Lock()
	if r.ids[m.ChatJID+" "+m.ID] {
		r.mu.Unlock()
		return channel.Stored{}, nil
	}
	r.ids[m.ChatJID+" "+m.ID] = true
	r.seq[m.ChatJID]++
	seq := r.seq[m.ChatJID]
	r.msgs = append(r.msgs, m)
	// Runs of one chat go one after the other, in message order, as the
	// real queue runs one per group.
	prev, mine := r.last[m.ChatJID], make(chan struct{})
	if will {
		r.last[m.ChatJID] = mine
	}
	r.mu.Unlock()
	if will {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if prev != nil {
				select {
				case <-prev:
				case <-ctx.Done(): // the channel closed; a run before hangs
					return
				}
			}
			if r.run(ctx, m, seq) {
				close(mine)
			}
		}()
	}
	return channel.Stored{Seq: seq, WillAnswer: will}, nil
}

// OnChat ignores chat announcements.
func (r *Router) OnChat(context.Context, channel.Channel, channel.ChatInfo) {}

// run plays the script of m; false when the run hangs (it never ends).
func (r *Router) run(ctx context.Context, m channel.Message, seq int64) bool {
	jid := m.ChatJID
	// A little after OnMessage returned, as a real run would start.
	time.Sleep(5 * time.Millisecond)
	switch {
	case strings.Contains(m.Text, "hang"):
		return false
	case strings.Contains(m.Text, "fail"):
		r.ch.SetTyping(ctx, jid, true)
		r.ch.RunDone(jid, seq, errors.New(RunError))
		return true
	case strings.Contains(m.Text, "slow"):
		r.ch.RunDone(jid, seq-1, nil)
	}
	ref := channel.MessageRef{ID: m.ID, Sender: m.Sender, FromMe: m.FromMe, Text: m.Text}
	react := strings.Contains(m.Text, "react")
	if react {
		r.ch.React(ctx, jid, ref, "👀")
	}
	r.ch.SetTyping(ctx, jid, true)
	if strings.Contains(m.Text, "quote") {
		r.ch.SendQuoting(ctx, jid, "Andy: echo "+m.Text, ref)
	} else {
		r.ch.Send(ctx, jid, "Andy: echo "+m.Text)
	}
	if strings.Contains(m.Text, "twice") {
		r.ch.Send(ctx, jid, "Andy: and again")
	}
	if strings.Contains(m.Text, "file") {
		if _, err := r.ch.SendFile(ctx, jid, channel.File{Name: FileName, MIME: "text/plain; charset=utf-8",
			Kind: channel.KindDocument, Data: []byte(FileData), Caption: FileCaption}); err != nil {
			r.ch.Send(ctx, jid, "Andy: could not send the file: "+err.Error())
		}
	}
	r.ch.SetTyping(ctx, jid, false)
	if react {
		r.ch.React(ctx, jid, ref, "✅")
	}
	r.ch.RunDone(jid, seq, nil)
	return true
}

// Messages returns the messages stored so far.
func (r *Router) Messages() []channel.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]channel.Message(nil), r.msgs...)
}

// Wait waits for the runs started so far. A hanging run ends at once; a run
// queued behind it stays queued until the channel's context ends: Wait only
// after closing the channel.
func (r *Router) Wait() { r.wg.Wait() }

// Daemon is a control server with a local channel and a fake Router, serving
// a socket in a temporary directory.
type Daemon struct {
	Home   string // the directory of the socket: use it as NANOCLAW_HOME
	Socket string
	Local  *local.Channel
	Router *Router
}

// Start serves the control API on Home/control.sock until the test ends. The
// directory is made short (unix socket paths are limited to 107 bytes). The
// local channel keeps the files it sends in local.FilesDir(Home), as the
// daemon's does; opts come after that, and may change it or the media limit.
func Start(t testing.TB, opts ...local.Option) *Daemon {
	t.Helper()
	home, err := os.MkdirTemp("", "nc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	d := &Daemon{Home: home, Socket: filepath.Join(home, "control.sock"), Local: local.New(quiet, append([]local.Option{local.WithFiles(local.FilesDir(home), 0)}, opts...)...)}
	d.Router = NewRouter(d.Local)
	if err := d.Local.Connect(context.Background(), d.Router); err != nil {
		t.Fatal(err)
	}
	ln, err := control.Listen(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := control.NewServer(control.Options{Local: d.Local, Logger: quiet})
	served := make(chan error, 1)
	go func() { served <- srv.ServeListener(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("control server: %v", err)
		}
		d.Local.Close()
		d.Router.Wait()
	})
	return d
}
