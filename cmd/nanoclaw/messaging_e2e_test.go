package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/daemon"
	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// world is a real nanoclaw daemon on a real runtime, with the real Claude
// Code in the agent image and the fake model upstream.
type world struct {
	t    *testing.T
	home string
	env  []string
	fake *fakeapi.Server
	d    *daemonProc
}

func newWorld(t *testing.T, rtName string, extraEnv ...string) *world {
	t.Helper()
	bin := testenv.Runtime(t, rtName)
	testenv.Image(t, bin, testenv.AgentImage)
	w := &world{t: t, fake: fakeapi.New()}
	t.Cleanup(w.fake.Close)
	env, home := homeEnv(t)
	os.Chmod(home, 0o755)
	w.home = home
	w.env = append(env,
		"NANOCLAW_RUNTIME="+rtName,
		"NANOCLAW_IMAGE="+testenv.AgentImage,
		"NANOCLAW_AGENT_BINARY="+testenv.AgentBinary(t),
		"ANTHROPIC_BASE_URL="+w.fake.URL(),
		"ANTHROPIC_API_KEY=sk-ant-test-key",
		"IDLE_TIMEOUT=10s",
	)
	w.env = append(w.env, extraEnv...)
	return w
}

// register adds a non-main local group straight in the store (the groups
// command comes with its own issue).
func (w *world) register(folder string, requiresTrigger bool) {
	w.t.Helper()
	dir := filepath.Join(w.home, ".nanoclaw", "store")
	os.MkdirAll(dir, 0o700)
	st, err := store.Open(context.Background(), filepath.Join(dir, "nanoclaw.db"), store.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.PutGroup(ctx, store.Group{Folder: folder, Name: folder, Trigger: "@Andy", RequiresTrigger: requiresTrigger, AddedAt: time.Now()}); err != nil {
		w.t.Fatal(err)
	}
	if err := st.BindChat(ctx, "local:"+folder, folder); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) start() {
	w.t.Helper()
	w.d = startDaemon(w.t, w.env)
	w.d.waitLog(w.t, "nanoclaw running")
}

func (w *world) stop() {
	w.t.Helper()
	w.d.cmd.Process.Signal(syscall.SIGTERM)
	if code, out := w.d.wait(w.t); code != cli.ExitOK {
		w.t.Errorf("daemon exit %d:\n%s", code, out)
	}
}

// nanoclaw runs a CLI command against the daemon.
func (w *world) nanoclaw(args ...string) (stdout, stderr string, code int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = w.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

func TestSendWaitAnswersTriggeredMessagesWithCatchUp(t *testing.T) {
	w := newWorld(t, "podman")
	w.register("family", true)
	w.start()
	defer w.stop()

	w.fake.Script(fakeapi.Text("hello from the family agent"))
	out, errOut, code := w.nanoclaw("send", "--group", "family", "--sender", "Bob", "--wait", "@Andy hi there")
	if code != 0 || !strings.Contains(out, "Andy: hello from the family agent") {
		t.Fatalf("send --wait: exit %d\nstdout: %s\nstderr: %s\ndaemon:\n%s", code, out, errOut, w.d.raw.String())
	}

	// Without the trigger: stored, no run.
	out, errOut, code = w.nanoclaw("send", "--group", "family", "--sender", "Carol", "--wait", "what a lovely day")
	if code != 0 || out != "" || !strings.Contains(errOut, "no reply") {
		t.Errorf("untriggered send: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	w.fake.Script(fakeapi.Text("second answer"))
	out, _, code = w.nanoclaw("send", "--group", "family", "--sender", "Bob", "--wait", "@Andy and now?")
	if code != 0 || !strings.Contains(out, "Andy: second answer") {
		t.Fatalf("second send: exit %d, %q", code, out)
	}
	mains := w.fake.MainRequests()
	if len(mains) != 2 {
		t.Fatalf("%d model turns, want 2 (the untriggered message must not start a run):\n%s", len(mains), w.fake.Summary())
	}
	second := mains[1].LastUserText()
	if !strings.Contains(second, "what a lovely day") || !strings.Contains(second, "@Andy and now?") || strings.Contains(second, "@Andy hi there") {
		t.Errorf("the second prompt should be the catch-up since the first answer:\n%s", second)
	}
	if !strings.Contains(second, `sender="Carol"`) {
		t.Errorf("the catch-up lacks the sender:\n%s", second)
	}
}

var crashLong = flag.Bool("crash.long", false, "run the long version of the crash test (2000 messages, more kills)")

// markerRE finds the message markers the crash test sends ("m17e").
var markerRE = regexp.MustCompile(`\bm[0-9]+e\b`)

// echoMarkers makes the fake model answer with the markers of every message
// in the prompt it got, so each reply says which messages it answered.
func echoMarkers(n int) []fakeapi.Turn {
	turns := make([]fakeapi.Turn, n)
	for i := range turns {
		turns[i] = fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
			return fakeapi.Text("ANS " + strings.Join(markerRE.FindAllString(r.LastUserText(), -1), " "))
		})
	}
	return turns
}

// crashRand is the source of the crash test's kill times, seeded from
// NANOCLAW_CRASH_SEED when it is set, at random otherwise. The seed is logged
// so a failure's kill times can be replayed; the daemon's own timing around
// them still varies from run to run.
func crashRand(t *testing.T) *rand.Rand {
	seed := rand.Uint64()
	if s := os.Getenv("NANOCLAW_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("NANOCLAW_CRASH_SEED=%q: %v", s, err)
		}
	}
	t.Logf("kill times from seed %d (replay: NANOCLAW_CRASH_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, 0))
}

// While triggered messages flow into 5 groups, the host is killed with
// SIGKILL at random moments and restarted. At the end every message was part
// of exactly one answered prompt, and no reply was kept or sent twice.
func TestCrashSafeDelivery(t *testing.T) {
	messages, kills := 200, 4
	if *crashLong {
		messages, kills = 2000, 20
	}
	const groups = 5
	w := newWorld(t, "podman", "IDLE_TIMEOUT=2s")
	for g := range groups {
		w.register(fmt.Sprintf("crash%d", g), true)
	}
	w.fake.Script(echoMarkers(20 * messages)...)
	w.start()

	// The killer: SIGKILL at random moments, restart after a short outage.
	rnd := crashRand(t)
	var mu sync.Mutex
	stopKilling := make(chan struct{})
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		for range kills {
			select {
			case <-stopKilling:
				return
			case <-time.After(time.Duration(300+rnd.IntN(2500)) * time.Millisecond):
			}
			mu.Lock()
			w.d.cmd.Process.Kill()
			w.d.wait(t)
			time.Sleep(time.Duration(rnd.IntN(300)) * time.Millisecond)
			w.d = startDaemon(t, w.env)
			w.d.waitLog(t, "nanoclaw running")
			mu.Unlock()
		}
	}()

	// The senders: each message is retried with the same id until the
	// daemon confirms it stored it (a retry of a stored one is a no-op).
	var wg sync.WaitGroup
	next := make(chan int)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				group := fmt.Sprintf("crash%d", i%groups)
				for attempt := 0; ; attempt++ {
					_, errOut, code := w.nanoclaw("send", "--group", group, "--id", fmt.Sprintf("id%d", i), fmt.Sprintf("@Andy m%de", i))
					if code == 0 {
						break
					}
					if attempt > 200 {
						t.Errorf("message %d never got stored: %s", i, errOut)
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	for i := range messages {
		next <- i
	}
	close(next)
	wg.Wait()
	close(stopKilling)
	<-killerDone

	// Wait until every chat is answered up to its newest message and
	// nothing is left to send.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		done, why := w.allAnswered()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not everything was answered within 3 minutes: %s\ndaemon:\n%s", why, w.d.raw.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	mu.Lock()
	w.stop()
	mu.Unlock()

	st := w.openStore()
	defer st.Close()
	seen := map[string]int{}
	for g := range groups {
		for _, text := range sentTo(t, st, fmt.Sprintf("local:crash%d", g)) {
			for _, m := range markerRE.FindAllString(text, -1) {
				seen[m]++
			}
		}
	}
	for i := range messages {
		if n := seen[fmt.Sprintf("m%de", i)]; n != 1 {
			t.Errorf("message m%de is in %d sent replies, want exactly 1", i, n)
		}
	}
	t.Logf("%d messages, %d kills, %d model turns", messages, kills, len(w.fake.MainRequests()))
}

// allAnswered reports whether every chat is answered up to its newest
// message and the outbox is empty.
func (w *world) allAnswered() (bool, string) {
	st := w.openStore()
	defer st.Close()
	ctx := context.Background()
	pending, err := st.ChatsWithPending(ctx)
	if err != nil {
		return false, err.Error()
	}
	if len(pending) > 0 {
		return false, fmt.Sprintf("%v have unanswered messages", pending)
	}
	if unsent, _ := st.Unsent(ctx); len(unsent) > 0 {
		return false, fmt.Sprintf("%d replies unsent", len(unsent))
	}
	return true, ""
}

func (w *world) openStore() *store.Store {
	w.t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(w.home, ".nanoclaw", "store", "nanoclaw.db"), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

// A hundred concurrent sends over ten groups never run more containers than
// the global cap, as the runtime itself shows, and all get answered.
func TestConcurrentSendsRespectTheCap(t *testing.T) {
	const groups, sends, limit = 10, 100, 3
	w := newWorld(t, "podman", fmt.Sprintf("MAX_CONCURRENT_CONTAINERS=%d", limit), "IDLE_TIMEOUT=1s")
	for g := range groups {
		w.register(fmt.Sprintf("busy%d", g), false)
	}
	w.fake.Script(echoMarkers(10 * sends)...)
	w.start()
	defer w.stop()

	rt := &sandbox.Runtime{Kind: sandbox.Podman, Bin: testenv.Runtime(t, "podman"),
		Instance: daemon.Instance(&config.Config{Home: filepath.Join(w.home, ".nanoclaw")})}
	stopWatching := make(chan struct{})
	peak := make(chan int)
	go func() {
		most := 0
		for {
			select {
			case <-stopWatching:
				peak <- most
				return
			case <-time.After(50 * time.Millisecond):
			}
			if names, err := rt.List(context.Background(), "nanoclaw-"); err == nil {
				most = max(most, len(names))
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan string, sends)
	for i := range sends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, errOut, code := w.nanoclaw("send", "--group", fmt.Sprintf("busy%d", i%groups), "--wait=2m", fmt.Sprintf("m%de", i))
			if code != 0 || !strings.Contains(out, "ANS") {
				errs <- fmt.Sprintf("send %d: exit %d, stdout %q, stderr %q", i, code, out, errOut)
			}
		}()
	}
	wg.Wait()
	close(stopWatching)
	most := <-peak
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if most > limit {
		t.Errorf("the runtime showed %d agent containers at once, over the cap of %d", most, limit)
	}
	if most < 2 {
		t.Errorf("at most %d container at once: groups did not run in parallel (or the watch saw nothing)", most)
	}
	t.Logf("peak %d containers, %d model turns", most, len(w.fake.MainRequests()))
}
