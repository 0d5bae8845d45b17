package agent

// Hostile-agent tests: a prompt-injected agent in a non-main group, driven
// through the real Claude Code by the scripted fake model, attacks the
// host's side of the boundary; each test asserts the exact refusal and that
// nothing changed outside. Rows of SECURITY.md name them.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// R1: the agent plants symlinks (and a FIFO) in every directory it can
// write, where the host used to write or look, then its container is
// started again. The host writes nothing outside, and its run logs are in
// its own logs directory.
func TestHostileSymlinksInWritableTrees(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		outside := t.TempDir() // a host directory: the target of every link
		os.Chmod(outside, 0o777)
		victim := filepath.Join(outside, "victim")
		os.WriteFile(victim, []byte("host file\n"), 0o666)

		g := h.group("evil", false, store.ContainerConfig{})
		s := h.start(g, StartOptions{})
		next := s.started.Add(time.Hour).UTC() // predictable names, planted in bulk below
		out := h.bash(s, strings.Join([]string{
			"cd /workspace/group",
			"ln -s " + outside + " logs",
			"rm -f CLAUDE.md && ln -s " + victim + " CLAUDE.md",
			"mkdir -p media && ln -s " + outside + " media/x",
			"mkdir -p /home/agent/.claude/projects/-workspace-group",
			"mkfifo /home/agent/.claude/projects/-workspace-group/00000000-0000-4000-8000-000000000000.jsonl",
			"for i in $(seq 0 50); do ln -s " + victim + " logs/" + next.Format("20060102T1504") + "$i.log 2>/dev/null; done",
			"ls -la /workspace/group; echo PLANTED",
		}, "; "))
		if !strings.Contains(out, "PLANTED") {
			t.Fatalf("the agent could not plant its links:\n%s", out)
		}
		s.Close(context.Background())

		// The next start resumes a session whose "transcript" is a FIFO: it
		// must neither block nor be trusted.
		s2 := h.start(g, StartOptions{SessionID: "00000000-0000-4000-8000-000000000000"})
		h.fake.Script(fakeapi.Text("answered after the attack"))
		h.prompt(s2, "hello again")
		s2.Close(context.Background())

		if got, _ := os.ReadFile(victim); string(got) != "host file\n" {
			t.Errorf("the host wrote through a planted link: victim now %q", got)
		}
		if entries, _ := os.ReadDir(outside); len(entries) != 1 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("the host created files in a directory the agent pointed at: %v", names)
		}
		logs, _ := filepath.Glob(filepath.Join(h.runner.opt.LogsDir, "evil", "*.log"))
		if len(logs) != 2 {
			t.Errorf("want the two runs' logs in the host's logs directory, got %v", logs)
		}
		for _, l := range logs {
			st, _ := os.Lstat(l)
			if st == nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
				t.Errorf("run log %s: %v", l, st)
			}
		}
		if id, _ := h.st.Session(context.Background(), "evil"); id == "00000000-0000-4000-8000-000000000000" {
			t.Errorf("the session with a FIFO for a transcript is still stored")
		}
	})
}

// containerPID is the host pid of a running container's init.
func (h *harness) containerPID(name string) int {
	h.t.Helper()
	out, err := exec.Command(h.rt.Bin, "inspect", "--format", "{{.State.Pid}}", name).Output()
	if err != nil {
		h.t.Fatalf("inspect %s: %v", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid <= 0 {
		h.t.Fatalf("inspect %s: pid %q", name, out)
	}
	return pid
}

// R2: each group's container runs as its own host id, which is no account
// of the host; another local user can reach neither the group's socket nor
// its files, not even through /proc/<pid>/root.
func TestHostileLocalUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the per-group ids are a root daemon's; as an ordinary user containers run as that user")
	}
	const other = 1000 // the first human account on most hosts: the container user before R2
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		a := h.start(h.group("alpha", false, store.ContainerConfig{}), StartOptions{})
		b := h.start(h.group("beta", false, store.ContainerConfig{}), StartOptions{})
		idA := h.bash(a, "id -u; id -g")
		idB := h.bash(b, "id -u; id -g")
		uidA, _ := strconv.Atoi(strings.Fields(idA)[0])
		uidB, _ := strconv.Atoi(strings.Fields(idB)[0])
		if uidA < FirstContainerID || uidB < FirstContainerID || uidA == uidB || strings.Fields(idA)[1] != strings.Fields(idA)[0] {
			t.Fatalf("container ids: alpha %q, beta %q; want two distinct ids from %d on, gid = uid", idA, idB, FirstContainerID)
		}
		used, err := hostIDs("/etc")
		if err != nil || used.taken(uidA) || used.taken(uidB) {
			t.Fatalf("a container id belongs to the host's accounts (%v)", err)
		}
		for _, c := range []struct {
			path string
			uid  int
			mode os.FileMode
		}{
			{filepath.Join(h.runner.opt.GroupsDir, "alpha"), uidA, os.ModeDir | 0o700},
			{filepath.Join(h.runner.opt.SessionsDir, "alpha", ".claude"), uidA, os.ModeDir | 0o700},
			{a.runDir, uidA, os.ModeDir | 0o700},
			{filepath.Join(a.runDir, ipc.SocketName), uidA, os.ModeSocket | 0o600},
		} {
			st, err := os.Lstat(c.path)
			if err != nil {
				t.Fatal(err)
			}
			if sys := st.Sys().(*syscall.Stat_t); int(sys.Uid) != c.uid || st.Mode() != c.mode {
				t.Errorf("%s: uid %d mode %v; want uid %d mode %v", c.path, sys.Uid, st.Mode(), c.uid, c.mode)
			}
		}

		// Another local user tries the ways in the review found.
		pid := h.containerPID(a.name)
		root := fmt.Sprintf("/proc/%d/root", pid)
		asOther := func(name string, args ...string) (string, error) {
			cmd := exec.Command(name, args...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: other, Gid: other}}
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := asOther("/usr/bin/ls", root+"/workspace/group"); err == nil {
			t.Errorf("uid %d listed the group's folder through %s:\n%s", other, root, out)
		}
		for _, sock := range []string{root + ipc.ContainerSocket, filepath.Join(a.runDir, ipc.SocketName)} {
			out, err := asOther("/usr/bin/curl", "-sS", "--max-time", "5", "--unix-socket", sock,
				"-d", "{}", "http://gateway"+ipc.PathToolPrefix+"list_tasks")
			if err == nil || strings.Contains(out, "{") {
				t.Errorf("uid %d reached the gateway at %s: %s (%v)", other, sock, out, err)
			}
		}
		if calls := h.tools.all(); len(calls) != 0 {
			t.Errorf("tool calls reached the host: %+v", calls)
		}
	})
}

// R8: the daemon's credential and proxy settings never reach a container,
// not through the runtime CLI's environment and not through podman's proxy
// copying.
func TestHostEnvironmentStaysOutside(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://proxyuser:PROXYSECRET@proxy.invalid:3128")
	t.Setenv("http_proxy", "http://proxyuser:PROXYSECRET@proxy.invalid:3128")
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-ENVSECRET")
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		s := h.start(h.group("envcheck", false, store.ContainerConfig{}), StartOptions{})
		out := h.bash(s, "tr '\\0' '\\n' < /proc/1/environ; echo ---; tr '\\0' '\\n' < /proc/self/environ; echo END-OF-ENV")
		if !strings.Contains(out, "END-OF-ENV") {
			t.Fatalf("no environment read:\n%s", out)
		}
		for _, bad := range []string{"PROXYSECRET", "ENVSECRET", "proxy.invalid"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s reached the container:\n%s", bad, out)
			}
		}
	})
}

// R13: a container left running by a daemon that died keeps trying its
// socket; the next run of its group opens a socket it cannot reach, so none
// of its calls gets anywhere — the next run's upstream sees none of them.
func TestHostileLeftoverCannotReachTheNextRun(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		g := h.group("stray", false, store.ContainerConfig{})
		old := h.start(g, StartOptions{})
		// The probe loop outlives the turn: every half second it calls the
		// API through whatever socket /workspace/ipc holds, and notes the
		// status (000: no connection). A detached process would be killed
		// once the turn is posted (incontainer.KillStrays), so the probe runs
		// as Claude Code's own background job, which lives as long as the run.
		h.fake.Script(fakeapi.ToolUse("Bash", map[string]any{
			"command": "for i in $(seq 1 600); do curl -s -o /dev/null -w \"%{http_code}\\n\" --max-time 2 " +
				"--unix-socket " + ipc.ContainerSocket + " http://gateway/v1/models >> /workspace/group/probe.txt; sleep 0.5; done",
			"description":       "probe",
			"run_in_background": true,
		}), fakeapi.Text("started"))
		h.prompt(old, "start the probe")

		// The daemon "dies": its side of the socket goes, the container stays.
		old.ep.Close()
		h.runner.forget(old)
		before := len(h.fake.Requests())

		// A new run of the group (as a restarted daemon would start it; here the
		// old container is deliberately left running).
		s := h.start(g, StartOptions{})
		opened := time.Now()
		probe := filepath.Join(h.runner.opt.GroupsDir, "stray", "probe.txt")
		size := func() int64 {
			st, err := os.Stat(probe)
			if err != nil {
				return 0
			}
			return st.Size()
		}
		mark := size()
		for deadline := time.Now().Add(30 * time.Second); size() < mark+4*4 && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
		}
		data, _ := os.ReadFile(probe)
		lines := strings.Fields(string(data)[mark:])
		if len(lines) < 4 {
			t.Fatalf("the leftover's probe did not run after %v (%d lines)", time.Since(opened), len(lines))
		}
		for _, code := range lines {
			if code != "000" {
				t.Errorf("the leftover container reached a gateway after the new run opened (HTTP %s)", code)
			}
		}
		for _, r := range h.fake.Requests()[before:] {
			if strings.Contains(r.Path, "/v1/models") {
				t.Errorf("a leftover's call reached the upstream: %s", r.Path)
			}
		}
		h.fake.Script(fakeapi.Text("the new run answers"))
		h.prompt(s, "hello")
		exec.Command(h.rt.Bin, "rm", "--force", old.name).Run()
	})
}

// R17: the agent makes its own transcript unusable — huge (sparse, so it
// costs no disk) or unreadable — to wedge its group: every later start
// would fail to resume. The host starts it afresh instead.
func TestHostileSessionWedge(t *testing.T) {
	runtimes(t, func(t *testing.T, rtName string) {
		h := newHarness(t, rtName, nil)
		g := h.group("wedge", false, store.ContainerConfig{})
		for _, attack := range []string{"truncate -s 3G", "chmod 000"} {
			s := h.start(g, StartOptions{})
			h.fake.Script(fakeapi.Text("first"))
			h.prompt(s, "hello")
			out := h.bash(s, "for f in /home/agent/.claude/projects/-workspace-group/*.jsonl; do "+attack+" \"$f\"; done; ls -la /home/agent/.claude/projects/-workspace-group; echo WEDGED")
			if !strings.Contains(out, "WEDGED") {
				t.Fatalf("%s: %s", attack, out)
			}
			s.Close(context.Background())
			stored, _ := h.st.Session(context.Background(), "wedge")
			if stored == "" {
				t.Fatalf("%s: no session stored after a good answer", attack)
			}
			s2 := h.start(g, StartOptions{SessionID: stored})
			h.fake.Script(fakeapi.Text("fresh answer"))
			if o := h.prompt(s2, "are you there?"); o.Result != "fresh answer" {
				t.Errorf("%s: answer %q", attack, o.Result)
			}
			s2.Close(context.Background())
			if now, _ := h.st.Session(context.Background(), "wedge"); now == stored || now == "" {
				t.Errorf("%s: stored session %q after the attack on %q; want a fresh one", attack, now, stored)
			}
		}
	})
}
