package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// The targets (Speed and footprint), reported here, never asserted:
// the machine is shared and noisy, so a timed test would fail at random.
// Start to "running" ≤ 100 ms, idle RSS ≤ 25 MB with WhatsApp unpaired.

// benchEnv returns the environment of a daemon as the end-to-end tests run
// it (podman, the test agent image) with its data home under home.
func benchEnv(b *testing.B) func(home string) []string {
	b.Helper()
	testenv.Image(b, testenv.Runtime(b, "podman"), testenv.AgentImage)
	agent := testenv.AgentBinary(b)
	return func(home string) []string {
		return []string{
			"HOME=" + home,
			"PATH=" + os.Getenv("PATH"),
			"TZ=UTC",
			"NANOCLAW_RUNTIME=podman",
			"NANOCLAW_IMAGE=" + testenv.AgentImage,
			"NANOCLAW_AGENT_BINARY=" + agent,
			"ANTHROPIC_API_KEY=sk-ant-test-key",
		}
	}
}

// benchBinary is the nanoclaw the benchmarks start: built as `make build`
// builds it (static, -trimpath; the test binary's own build links libc,
// which the shipped one does not), or $NANOCLAW_BENCH_BINARY, to measure
// another build (an earlier commit's) on the same machine in the same hour.
var benchBinary = sync.OnceValues(func() (string, error) {
	if path := os.Getenv("NANOCLAW_BENCH_BINARY"); path != "" {
		return path, nil
	}
	path := filepath.Join(filepath.Dir(binary), "nanoclaw-static")
	cmd := exec.Command("go", "build", "-trimpath", "-o", path, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build nanoclaw as make build does: %v\n%s", err, out)
	}
	return path, nil
})

// startTimes is how long one start took, from exec.
type startTimes struct {
	running time.Duration // to the "nanoclaw running" log line
	status  time.Duration // to the control socket answering GET /v1/status
}

// benchDaemon is a started `nanoclaw run`.
type benchDaemon struct {
	cmd    *exec.Cmd
	stderr *testenv.Buffer
	done   chan struct{}
}

// startBenchDaemon starts the daemon on env's home and returns when it is
// running and its control socket answers, with how long each took.
func startBenchDaemon(b *testing.B, env []string, home string) (*benchDaemon, startTimes) {
	b.Helper()
	bin, err := benchBinary()
	if err != nil {
		b.Fatal(err)
	}
	d := &benchDaemon{cmd: exec.Command(bin, "run"), stderr: &testenv.Buffer{}, done: make(chan struct{})}
	d.cmd.Env = env
	pipe, err := d.cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	running := make(chan time.Time, 1)
	begin := time.Now()
	if err := d.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			if bytes.Contains(sc.Bytes(), []byte(`"msg":"nanoclaw running"`)) {
				running <- time.Now()
			}
			fmt.Fprintln(d.stderr, sc.Text())
		}
		d.cmd.Wait()
	}()
	b.Cleanup(func() { d.cmd.Process.Kill(); <-d.done })

	client := testenv.UnixClient(filepath.Join(home, ".nanoclaw", "control.sock"))
	client.Timeout = time.Second
	var times startTimes
	deadline := time.Now().Add(20 * time.Second)
	for times.status == 0 {
		resp, err := client.Get("http://nanoclaw/v1/status")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				times.status = time.Since(begin)
				break
			}
		}
		select {
		case <-d.done:
			b.Fatalf("the daemon exited before its control socket answered:\n%s", d.stderr)
		case <-time.After(time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("the control socket did not answer within 20s:\n%s", d.stderr)
		}
	}
	select {
	case at := <-running:
		times.running = at.Sub(begin)
	case <-time.After(20 * time.Second):
		b.Fatalf("no \"nanoclaw running\" within 20s:\n%s", d.stderr)
	}
	return d, times
}

// settled waits until the daemon's runtime is prepared: the clean-up it
// runs after start (the container CLI's own work) is over, so what is timed
// next is the daemon at rest.
func (d *benchDaemon) settled(b *testing.B) {
	b.Helper()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(d.stderr.String(), `"msg":"container runtime ready"`); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("no \"container runtime ready\" within 60s:\n%s", d.stderr)
		}
	}
}

// stop ends the daemon as the service manager would, and waits for it.
func (d *benchDaemon) stop(b *testing.B) {
	b.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		b.Fatalf("the daemon did not stop within 30s:\n%s", d.stderr)
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		b.Fatalf("the daemon exited %d:\n%s", code, d.stderr)
	}
}

// median of ds, which is not empty.
func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkDaemonStart reports the median time from exec to "nanoclaw
// running" and to the control socket's first answer: on a fresh data home
// (first start: schema, main group, templates) and on one that has run
// before (warm).
func BenchmarkDaemonStart(b *testing.B) {
	report := func(b *testing.B, all []startTimes) {
		var running, status []time.Duration
		for _, t := range all {
			running, status = append(running, t.running), append(status, t.status)
		}
		b.ReportMetric(ms(median(running)), "running-ms")
		b.ReportMetric(ms(median(status)), "status-ms")
	}
	env := benchEnv(b)
	b.Run("fresh", func(b *testing.B) {
		var all []startTimes
		for b.Loop() {
			home := b.TempDir()
			d, times := startBenchDaemon(b, env(home), home)
			d.stop(b)
			all = append(all, times)
		}
		report(b, all)
	})
	b.Run("warm", func(b *testing.B) {
		home := b.TempDir()
		d, _ := startBenchDaemon(b, env(home), home)
		d.stop(b)
		var all []startTimes
		for b.Loop() {
			d, times := startBenchDaemon(b, env(home), home)
			d.stop(b)
			all = append(all, times)
		}
		report(b, all)
	})
}

// BenchmarkIdleRSS reports the median resident memory (VmRSS) and its peak
// (VmHWM) of a daemon left idle for three seconds after start, WhatsApp
// unpaired. Go's runtime forces a collection every two minutes, which adds
// about half a megabyte that this figure does not show.
func BenchmarkIdleRSS(b *testing.B) {
	env := benchEnv(b)
	var rss, hwm []float64
	for b.Loop() {
		home := b.TempDir()
		d, _ := startBenchDaemon(b, env(home), home)
		time.Sleep(3 * time.Second) // what start left to do in the background, done
		r, h := procMemory(b, d.cmd.Process.Pid)
		d.stop(b)
		rss, hwm = append(rss, r), append(hwm, h)
	}
	slices.Sort(rss)
	slices.Sort(hwm)
	b.ReportMetric(rss[len(rss)/2], "rss-MB")
	b.ReportMetric(hwm[len(hwm)/2], "hwm-MB")
}

// procMemory reads a process's VmRSS and VmHWM, in MB.
func procMemory(b *testing.B, pid int) (rss, hwm float64) {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		key, value, _ := strings.Cut(line, ":")
		fields := strings.Fields(value) // "26680 kB"
		if len(fields) != 2 || fields[1] != "kB" || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			b.Fatalf("/proc/%d/status: %s: %v", pid, line, err)
		}
		if key == "VmRSS" {
			rss = kb / 1024
		} else {
			hwm = kb / 1024
		}
	}
	if rss == 0 || hwm == 0 {
		b.Fatalf("/proc/%d/status has no VmRSS or VmHWM:\n%s", pid, data)
	}
	return rss, hwm
}
