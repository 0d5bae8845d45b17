package agent

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// BenchmarkColdVsBare alternates two runs and reports the time until the
// answer exists for each, and their ratio:
//   - cold: one agent run from nothing — gateway socket, hardened container,
//     nanoclaw-agent, Claude Code start, one turn against the fake model;
//   - bare: the same image and hardened flags running claude -p alone (host
//     network so it reaches the fake directly; no gateway, no agent runner).
//
// Closing the cold run's container is outside the measured time, as is the
// bare container's exit.
func BenchmarkColdVsBare(b *testing.B) {
	for _, rtName := range []string{"podman", "docker"} {
		b.Run(rtName, func(b *testing.B) {
			h := newHarness(b, rtName, quiet)
			g := h.group("bench", false, store.ContainerConfig{})
			var cold, bare []time.Duration
			for b.Loop() {
				h.fake.Script(fakeapi.Text("ok"))
				start := time.Now()
				s := h.start(g, StartOptions{})
				h.prompt(s, "hi")
				cold = append(cold, time.Since(start))
				s.Close(context.Background())

				h.fake.Script(fakeapi.Text("ok"))
				bare = append(bare, h.bareRun(b))
			}
			c, r := percentile(cold, 50), percentile(bare, 50)
			b.ReportMetric(ms(c), "cold-p50-ms")
			b.ReportMetric(ms(r), "bare-p50-ms")
			b.ReportMetric(float64(c)/float64(r), "cold/bare")
		})
	}
}

// bareRun runs claude -p in the agent image with the hardened flags and
// returns the time until its result line.
func (h *harness) bareRun(b *testing.B) time.Duration {
	spec := sandbox.Spec{
		Image: h.runner.opt.Image, User: testenv.ContainerUser(), Workdir: "/tmp",
		MemoryMB: h.runner.opt.MemoryMB, CPUs: h.runner.opt.CPUs, PidsLimit: h.runner.opt.PidsLimit,
		Tmpfs: []sandbox.Tmpfs{{Target: "/tmp", SizeMB: 512}, {Target: ipc.ContainerHome, SizeMB: 256, Private: true}},
		Env: []string{"ANTHROPIC_BASE_URL=" + h.fake.URL(), "ANTHROPIC_API_KEY=bench", "HOME=" + ipc.ContainerHome,
			"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"},
		Cmd: []string{"claude", "-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions", "hi"},
	}
	spec.Name, _ = sandbox.ContainerName("bench", time.Now())
	args, err := h.rt.RunArgs(spec)
	if err != nil {
		b.Fatal(err)
	}
	// The one change: host network, so claude reaches the fake directly.
	args[slices.Index(args, "--network")+1] = "host"
	start := time.Now()
	cmd := exec.Command(h.rt.Bin, args...)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"type":"result"`) {
			d := time.Since(start)
			io.Copy(io.Discard, stdout)
			return d
		}
	}
	b.Fatal("bare run ended without a result")
	return 0
}

// BenchmarkWarmFollowUp is a prompt to a warm container: it reports the
// round trip and nanoclaw's overhead on it (round trip minus the turn's
// time inside Claude Code, which includes the fake model's own time).
func BenchmarkWarmFollowUp(b *testing.B) {
	for _, rtName := range []string{"podman", "docker"} {
		b.Run(rtName, func(b *testing.B) {
			h := newHarness(b, rtName, quiet)
			g := h.group("bench", false, store.ContainerConfig{})
			h.fake.Script(fakeapi.Text("warm-up"))
			s := h.start(g, StartOptions{})
			defer s.Close(context.Background())
			h.prompt(s, "warm up")
			var rtts, overheads []time.Duration
			for b.Loop() {
				h.fake.Script(fakeapi.Text("ok"))
				start := time.Now()
				out := h.prompt(s, "again")
				rtt := time.Since(start)
				rtts = append(rtts, rtt)
				overheads = append(overheads, rtt-time.Duration(out.DurationMS)*time.Millisecond)
			}
			b.ReportMetric(ms(percentile(rtts, 50)), "rtt-p50-ms")
			b.ReportMetric(ms(percentile(overheads, 50)), "overhead-p50-ms")
			b.ReportMetric(ms(percentile(overheads, 99)), "overhead-p99-ms")
		})
	}
}

// quiet keeps the runner's logs out of benchmark output.
func quiet(o *Options) { o.Logger = slog.New(slog.DiscardHandler) }

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
