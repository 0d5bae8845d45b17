package sandbox

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// fullSpec uses every field of Spec.
func fullSpec() Spec {
	return Spec{
		Name:    "nanoclaw-family-chat-1767225600000",
		Image:   "localhost/nanoclaw-agent:latest",
		User:    "1000:1000",
		Workdir: "/workspace/group",
		Env:     []string{"HOME=/home/agent", "ANTHROPIC_API_KEY=placeholder", "EMPTY="},
		Mounts: []Mount{
			{Source: "/srv/nanoclaw/groups/family-chat", Target: "/workspace/group"},
			{Source: "/srv/nanoclaw/ipc/family-chat", Target: "/workspace/ipc", ReadOnly: true},
		},
		Tmpfs:       []Tmpfs{{Target: "/tmp", SizeMB: 256}, {Target: "/home/agent", SizeMB: 128, Private: true}},
		MemoryMB:    2048,
		CPUs:        1.5,
		PidsLimit:   512,
		Interactive: true,
		Cmd:         []string{"/usr/local/bin/nanoclaw-agent", "run", "--verbose"},
	}
}

func withHostCPUs(t *testing.T, n int) {
	t.Helper()
	saved := hostCPUs
	hostCPUs = func() int { return n }
	t.Cleanup(func() { hostCPUs = saved })
}

// The whole command line, per runtime: a flag lost or misspelt in a change
// shows up here.
func TestRunArgsPerRuntime(t *testing.T) {
	withHostCPUs(t, 8)
	tail := []string{
		"--workdir", "/workspace/group",
		"--env", "HOME=/home/agent", "--env", "ANTHROPIC_API_KEY=placeholder", "--env", "EMPTY=",
		"--mount", "type=bind,source=/srv/nanoclaw/groups/family-chat,target=/workspace/group",
		"--mount", "type=bind,source=/srv/nanoclaw/ipc/family-chat,target=/workspace/ipc,readonly",
		"--interactive",
		"--entrypoint", "/usr/local/bin/nanoclaw-agent", "localhost/nanoclaw-agent:latest", "run", "--verbose",
	}
	limits := []string{
		"--pids-limit", "512", "--memory", "2048m", "--memory-swap", "2048m", "--cpus", "1.5",
		"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=16384:16384",
	}
	head := []string{"run", "--rm", "--name", "nanoclaw-family-chat-1767225600000", "--init",
		"--pull", "never", "--log-driver", "none", "--network", "none", "--user", "1000:1000",
		"--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only"}
	cases := []struct {
		kind Kind
		want []string
	}{
		{Docker, concat(head,
			[]string{"--tmpfs", "/tmp:rw,exec,nosuid,nodev,size=256m,mode=1777",
				"--tmpfs", "/home/agent:rw,exec,nosuid,nodev,size=128m,mode=0700,uid=1000,gid=1000"},
			limits, tail)},
		{Podman, concat(head,
			[]string{"--read-only-tmpfs=false", "--http-proxy=false",
				"--tmpfs", "/tmp:rw,exec,nosuid,nodev,size=256m,mode=1777,notmpcopyup",
				"--tmpfs", "/home/agent:rw,exec,nosuid,nodev,size=128m,mode=0700,U,notmpcopyup"},
			limits, tail)},
		{Apple, concat(
			[]string{"run", "--rm", "--name", "nanoclaw-family-chat-1767225600000", "--init",
				"--network", "none", "--user", "1000:1000", "--cap-drop", "ALL", "--read-only",
				"--mount", "type=tmpfs,target=/tmp,size=256M,mode=1777",
				"--mount", "type=tmpfs,target=/home/agent,size=128M,mode=1777",
				"--memory", "2048M", "--cpus", "2",
				"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=512:512"},
			tail)},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind), func(t *testing.T) {
			r := &Runtime{Kind: tc.kind, Bin: "/usr/bin/" + string(tc.kind)}
			got, err := r.RunArgs(fullSpec())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("RunArgs:\n got %q\nwant %q", got, tc.want)
			}
			// Keep: the same, but the container stays when it exits.
			r.Keep = true
			got, err = r.RunArgs(fullSpec())
			if want := slices.Delete(slices.Clone(tc.want), 1, 2); err != nil || !slices.Equal(got, want) {
				t.Errorf("RunArgs with Keep:\n got %q, %v\nwant %q", got, err, want)
			}
		})
	}
}

func concat(parts ...[]string) []string {
	var all []string
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// The hardening does not depend on what the Spec asks for: a minimal Spec
// gets it all the same, and the image and command stay last.
func TestRunArgsMinimalSpecIsHardened(t *testing.T) {
	s := Spec{Name: "nanoclaw-a-1", Image: "localhost/x", User: "1001:1001", MemoryMB: 64, CPUs: 0.5, PidsLimit: 64}
	for _, k := range []Kind{Docker, Podman, Apple} {
		got, err := (&Runtime{Kind: k}).RunArgs(s)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		want := [][2]string{{"--network", "none"}, {"--user", "1001:1001"}, {"--cap-drop", "ALL"}, {"--name", "nanoclaw-a-1"}}
		if k != Apple {
			want = append(want, [2]string{"--security-opt", "no-new-privileges"}, [2]string{"--pids-limit", "64"}, [2]string{"--pull", "never"})
		}
		for _, pair := range want {
			if !hasPair(got, pair[0], pair[1]) {
				t.Errorf("%s: %q lacks %s %s", k, got, pair[0], pair[1])
			}
		}
		for _, flag := range []string{"--read-only", "--rm", "--init"} {
			if !slices.Contains(got, flag) {
				t.Errorf("%s: %q lacks %s", k, got, flag)
			}
		}
		if slices.Contains(got, "--interactive") {
			t.Errorf("%s: --interactive without Interactive", k)
		}
		if got[len(got)-1] != "localhost/x" {
			t.Errorf("%s: image is not last: %q", k, got)
		}
	}
}

func hasPair(args []string, flag, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag && args[i+1] == value {
			return true
		}
	}
	return false
}

func TestRunArgsCapsCPUsAtHostCount(t *testing.T) {
	withHostCPUs(t, 2)
	cases := []struct {
		kind Kind
		cpus float64
		want string
	}{
		{Docker, 16, "2"},
		{Podman, 16, "2"},
		{Apple, 16, "2"},
		{Apple, 0.25, "1"}, // Apple's older releases take whole CPUs only: rounded up
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%v", tc.kind, tc.cpus), func(t *testing.T) {
			s := fullSpec()
			s.CPUs = tc.cpus
			got, err := (&Runtime{Kind: tc.kind}).RunArgs(s)
			if err != nil {
				t.Fatal(err)
			}
			if !hasPair(got, "--cpus", tc.want) {
				t.Errorf("want --cpus %s in %q", tc.want, got)
			}
		})
	}
}

// Everything that becomes an argument is checked; each bad value is
// rejected with an error that names it, by every runtime.
func TestRunArgsRejects(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Spec)
		want   string
	}{
		{"name without timestamp", func(s *Spec) { s.Name = "nanoclaw-main" }, `invalid container name "nanoclaw-main"`},
		{"name with shell", func(s *Spec) { s.Name = "nanoclaw-a;rm -rf /-1" }, "invalid container name"},
		{"name as flag", func(s *Spec) { s.Name = "--privileged" }, "invalid container name"},
		{"name uppercase", func(s *Spec) { s.Name = "nanoclaw-Main-1" }, "invalid container name"},
		{"name foreign", func(s *Spec) { s.Name = "postgres-1" }, "invalid container name"},
		{"image as flag", func(s *Spec) { s.Image = "--privileged" }, `invalid image reference "--privileged"`},
		{"image with space", func(s *Spec) { s.Image = "a b" }, "invalid image reference"},
		{"image empty", func(s *Spec) { s.Image = "" }, "invalid image reference"},
		{"root user", func(s *Spec) { s.User = "0:0" }, "never run as root"},
		{"root group", func(s *Spec) { s.User = "1000:0" }, "never run as root"},
		{"user name", func(s *Spec) { s.User = "agent" }, `invalid user "agent"`},
		{"user without gid", func(s *Spec) { s.User = "1000" }, "invalid user"},
		{"user too big", func(s *Spec) { s.User = "99999999999:1" }, "invalid user"},
		{"user empty", func(s *Spec) { s.User = "" }, "invalid user"},
		{"workdir relative", func(s *Spec) { s.Workdir = "workspace" }, `workdir "workspace" is not absolute`},
		{"env without =", func(s *Spec) { s.Env = []string{"HOME"} }, `"HOME" has no '='`},
		{"env key digit", func(s *Spec) { s.Env = []string{"1A=b"} }, `environment key "1A" is invalid`},
		{"env key dash", func(s *Spec) { s.Env = []string{"A-B=c"} }, `environment key "A-B"`},
		{"env key empty", func(s *Spec) { s.Env = []string{"=x"} }, `environment key ""`},
		{"env value newline", func(s *Spec) { s.Env = []string{"A=b\nC=d"} }, "value of A contains a NUL or line break"},
		{"env value NUL", func(s *Spec) { s.Env = []string{"A=b\x00"} }, "value of A contains"},
		{"env twice", func(s *Spec) { s.Env = []string{"A=1", "A=2"} }, "A is given twice"},
		{"source relative", func(s *Spec) { s.Mounts[0].Source = "groups/x" }, `mount source "groups/x" is not absolute`},
		{"source dotdot", func(s *Spec) { s.Mounts[0].Source = "/srv/../etc" }, `mount source "/srv/../etc" is not clean`},
		{"source trailing slash", func(s *Spec) { s.Mounts[0].Source = "/srv/x/" }, "is not clean"},
		{"source comma", func(s *Spec) { s.Mounts[0].Source = "/srv/a,target=/etc" }, `contains ','`},
		{"source colon", func(s *Spec) { s.Mounts[0].Source = "/srv/a:b" }, `contains ':'`},
		{"source equals", func(s *Spec) { s.Mounts[0].Source = "/srv/a=b" }, `contains '='`},
		{"source quote", func(s *Spec) { s.Mounts[0].Source = `/srv/"a` }, `contains '"'`},
		{"source newline", func(s *Spec) { s.Mounts[0].Source = "/srv/a\nb" }, "control character"},
		{"source bad utf8", func(s *Spec) { s.Mounts[0].Source = "/srv/\xff" }, "not valid UTF-8"},
		{"source empty", func(s *Spec) { s.Mounts[0].Source = "" }, "mount source is empty"},
		{"target relative", func(s *Spec) { s.Mounts[0].Target = "workspace" }, `mount target "workspace" is not absolute`},
		{"target dotdot", func(s *Spec) { s.Mounts[0].Target = "/workspace/../etc" }, "is not clean"},
		{"target root", func(s *Spec) { s.Mounts[0].Target = "/" }, "mount target is the root directory"},
		{"target twice", func(s *Spec) { s.Mounts[1].Target = s.Mounts[0].Target }, `"/workspace/group" is mounted twice`},
		{"tmpfs over mount", func(s *Spec) { s.Tmpfs[0].Target = "/workspace/ipc" }, "mounted twice"},
		{"tmpfs comma", func(s *Spec) { s.Tmpfs[0].Target = "/tmp,exec" }, `contains ','`},
		{"tmpfs size 0", func(s *Spec) { s.Tmpfs[0].SizeMB = 0 }, `tmpfs "/tmp" size 0 MiB`},
		{"no memory limit", func(s *Spec) { s.MemoryMB = 0 }, "memory limit 0 MiB"},
		{"no cpu limit", func(s *Spec) { s.CPUs = 0 }, "CPU limit 0"},
		{"cpu NaN", func(s *Spec) { s.CPUs = math.NaN() }, "CPU limit NaN"},
		{"cpu infinite", func(s *Spec) { s.CPUs = math.Inf(1) }, "CPU limit +Inf"},
		{"no pids limit", func(s *Spec) { s.PidsLimit = 0 }, "process limit 0"},
		{"shm negative", func(s *Spec) { s.ShmMB = -1 }, "/dev/shm size -1 MiB is outside 1..2048"},
		{"shm above memory", func(s *Spec) { s.ShmMB = 2049 }, "/dev/shm size 2049 MiB is outside 1..2048"},
		{"cmd NUL", func(s *Spec) { s.Cmd = []string{"run", "a\x00b"} }, "command argument 1 contains a NUL"},
		{"cmd empty program", func(s *Spec) { s.Cmd = []string{""} }, `command "" is empty`},
		{"cmd program a flag", func(s *Spec) { s.Cmd = []string{"--privileged"} }, `command "--privileged" is empty or starts with '-'`},
		{"cmd program a JSON list", func(s *Spec) { s.Cmd = []string{`["/bin/sh","-c"]`} }, `starts with '-' or '['`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []Kind{Docker, Podman, Apple} {
				s := fullSpec()
				tc.change(&s)
				got, err := (&Runtime{Kind: k}).RunArgs(s)
				if err == nil {
					t.Fatalf("%s: accepted, args %q", k, got)
				}
				if got != nil {
					t.Errorf("%s: returned args with the error", k)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: error %q, want it to contain %q", k, err, tc.want)
				}
			}
		})
	}
}

// A browser's /dev/shm: sized on docker and podman, right before the
// command's tail; not set at all when ShmMB is 0 (the runtime's 64 MB) or on
// Apple's CLI, which has no such flag.
func TestRunArgsShm(t *testing.T) {
	for _, tc := range []struct {
		kind  Kind
		shmMB int
		want  string // "" for no --shm-size argument
	}{
		{Docker, 512, "--shm-size=512m"},
		{Podman, 512, "--shm-size=512m"},
		{Podman, 2048, "--shm-size=2048m"}, // up to the memory limit
		{Docker, 0, ""},
		{Podman, 0, ""},
		{Apple, 512, ""},
	} {
		s := fullSpec()
		s.ShmMB = tc.shmMB
		args, err := (&Runtime{Kind: tc.kind}).RunArgs(s)
		if err != nil {
			t.Fatalf("%s ShmMB=%d: %v", tc.kind, tc.shmMB, err)
		}
		i := slices.IndexFunc(args, func(a string) bool { return strings.HasPrefix(a, "--shm-size") })
		switch {
		case tc.want == "" && i >= 0:
			t.Errorf("%s ShmMB=%d: unexpected %q", tc.kind, tc.shmMB, args[i])
		case tc.want != "" && (i < 0 || args[i] != tc.want):
			t.Errorf("%s ShmMB=%d: want %q in %q", tc.kind, tc.shmMB, tc.want, args)
		case tc.want != "" && args[i+1] != "--workdir":
			t.Errorf("%s: %q is not right before the command's tail: %q", tc.kind, tc.want, args)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	s := fullSpec()
	s.User = "0:0"
	s.MemoryMB = 1
	s.Env = append(s.Env, "bad key=1")
	err := s.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"root", "memory limit 1 MiB", `"bad key"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestRunArgsUnknownKind(t *testing.T) {
	if _, err := (&Runtime{Kind: "lxc"}).RunArgs(fullSpec()); err == nil || !strings.Contains(err.Error(), `"lxc"`) {
		t.Errorf("err = %v", err)
	}
}

func TestContainerName(t *testing.T) {
	at := time.UnixMilli(1767225600123)
	name, err := ContainerName("family-chat", at)
	if err != nil || name != "nanoclaw-family-chat-1767225600123" {
		t.Errorf("ContainerName = %q, %v", name, err)
	}
	long := strings.Repeat("a", 63)
	if name, err := ContainerName(long, at); err != nil || validateName(name) != nil {
		t.Errorf("63-character folder: %q, %v", name, err)
	}
	for _, bad := range []string{"", "../etc", "Family", "a b", "-x", "a/b", "a;b", strings.Repeat("a", 64)} {
		if name, err := ContainerName(bad, at); err == nil {
			t.Errorf("folder %q accepted: %q", bad, name)
		}
	}
	if _, err := ContainerName("x", time.UnixMilli(-5)); err == nil {
		t.Error("time before 1970 accepted")
	}
}

func TestBuildArgs(t *testing.T) {
	o := BuildOptions{
		ContextDir: "/tmp/ctx", Dockerfile: "/tmp/ctx/Dockerfile", Tag: "localhost/nanoclaw-agent:latest",
		BuildArgs: map[string]string{"BASE": "localhost/debian:bookworm-slim", "A": "1"},
		Labels:    map[string]string{"org.nanoclaw.dockerfile.sha256": "abc"},
	}
	tail := []string{"--file", "/tmp/ctx/Dockerfile", "--tag", "localhost/nanoclaw-agent:latest",
		"--build-arg", "A=1", "--build-arg", "BASE=localhost/debian:bookworm-slim",
		"--label", "org.nanoclaw.dockerfile.sha256=abc", "/tmp/ctx"}
	cases := []struct {
		kind    Kind
		hostNet bool
		want    []string
	}{
		{Docker, true, concat([]string{"build", "--network", "host"}, tail)},
		{Docker, false, concat([]string{"build"}, tail)},
		{Podman, true, concat([]string{"build"}, tail)}, // podman's build network works by itself
		{Apple, false, concat([]string{"build", "--progress", "plain"}, tail)},
	}
	for _, tc := range cases {
		got, err := (&Runtime{Kind: tc.kind}).BuildArgs(o, tc.hostNet)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s (host network %v):\n got %q\nwant %q", tc.kind, tc.hostNet, got, tc.want)
		}
	}
	// A target goes right after the tag, the same flag on every CLI.
	targeted := o
	targeted.Target = "browser"
	for _, tc := range cases {
		got, err := (&Runtime{Kind: tc.kind}).BuildArgs(targeted, tc.hostNet)
		i := slices.Index(tc.want, "--file") + 4
		want := slices.Insert(slices.Clone(tc.want), i, "--target", "browser")
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%s with a target:\n got %q, %v\nwant %q", tc.kind, got, err, want)
		}
	}
	bad := []struct {
		change func(*BuildOptions)
		want   string
	}{
		{func(o *BuildOptions) { o.Target = "--no-cache" }, `build target "--no-cache" is not a stage name`},
		{func(o *BuildOptions) { o.Target = "Browser" }, `build target "Browser"`},
		{func(o *BuildOptions) { o.Target = "a b" }, `build target "a b"`},
		{func(o *BuildOptions) { o.Target = strings.Repeat("a", 64) }, "is not a stage name"},
		{func(o *BuildOptions) { o.ContextDir = "ctx" }, `build context "ctx" is not an absolute path`},
		{func(o *BuildOptions) { o.Dockerfile = "-f" }, "Dockerfile"},
		{func(o *BuildOptions) { o.Tag = "--squash" }, "invalid image reference"},
		{func(o *BuildOptions) { o.BuildArgs = map[string]string{"A B": "1"} }, `build argument name "A B"`},
		{func(o *BuildOptions) { o.BuildArgs = map[string]string{"A": "1\n"} }, "build argument A contains"},
		{func(o *BuildOptions) { o.Labels = map[string]string{"-x": "1"} }, `label name "-x"`},
	}
	for _, b := range bad {
		o2 := o
		b.change(&o2)
		if _, err := (&Runtime{Kind: Podman}).BuildArgs(o2, false); err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("error %v, want %q", err, b.want)
		}
	}
}

func TestRunArgsLabelsTheInstance(t *testing.T) {
	for _, k := range []Kind{Docker, Podman, Apple} {
		r := &Runtime{Kind: k, Bin: string(k), Instance: "abc123"}
		args, err := r.RunArgs(fullSpec())
		if err != nil {
			t.Fatal(err)
		}
		if !hasPair(args, "--label", "nanoclaw.instance=abc123") {
			t.Errorf("%s: no instance label in %q", k, args)
		}
		r.Instance = "Bad-Instance"
		if _, err := r.RunArgs(fullSpec()); err == nil {
			t.Errorf("%s: an invalid instance was accepted", k)
		}
	}
}

// R8: a container CLI gets where its daemon and configuration are, never
// the daemon's credential or (outside image builds) its proxy settings.
func TestCLIEnvIsExplicit(t *testing.T) {
	host := map[string]string{
		"PATH": "/usr/bin", "HOME": "/root", "XDG_RUNTIME_DIR": "/run/user/0", "DOCKER_HOST": "unix:///x.sock",
		"ANTHROPIC_API_KEY": "sk-secret", "CLAUDE_CODE_OAUTH_TOKEN": "tok", "HTTPS_PROXY": "http://user:pw@proxy:3128",
		"http_proxy": "http://user:pw@proxy:3128", "LD_PRELOAD": "/tmp/evil.so", "AWS_SECRET_ACCESS_KEY": "x",
	}
	getenv := func(k string) string { return host[k] }
	run := strings.Join(cliEnv(getenv, false), " ")
	for _, want := range []string{"PATH=/usr/bin", "HOME=/root", "XDG_RUNTIME_DIR=/run/user/0", "DOCKER_HOST=unix:///x.sock"} {
		if !strings.Contains(run, want) {
			t.Errorf("run environment lacks %s: %s", want, run)
		}
	}
	for _, bad := range []string{"sk-secret", "tok", "proxy", "LD_PRELOAD", "AWS"} {
		if strings.Contains(run, bad) {
			t.Errorf("run environment carries %s: %s", bad, run)
		}
	}
	build := strings.Join(cliEnv(getenv, true), " ")
	if !strings.Contains(build, "HTTPS_PROXY=") || strings.Contains(build, "sk-secret") {
		t.Errorf("build environment: %s", build)
	}
	if env := cliEnv(func(string) string { return "" }, false); len(env) != 1 || !strings.HasPrefix(env[0], "PATH=") {
		t.Errorf("empty host environment gives %v; want only a PATH", env)
	}
}
