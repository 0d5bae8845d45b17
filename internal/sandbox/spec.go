package sandbox

import (
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Mount is a host directory or file bind-mounted into the container.
type Mount struct {
	Source   string // absolute, clean host path
	Target   string // absolute, clean path inside the container
	ReadOnly bool
}

// Tmpfs is an in-memory file system inside the container: with a read-only
// root, the tmpfs mounts and the read-write bind mounts are the only places a
// container can write.
type Tmpfs struct {
	Target string // absolute, clean path inside the container
	SizeMB int    // its size limit; tmpfs pages also count against MemoryMB
	// Private makes it the container user's own (mode 0700, owned by
	// Spec.User), as a home directory should be; otherwise it is mode 1777
	// like /tmp. Apple's container cannot set the owner: there it is 1777.
	Private bool
}

// Spec is one container to run. Every field is validated before it becomes
// an argument; the hardening flags are not optional and not in the Spec.
type Spec struct {
	Name        string   // see ContainerName
	Image       string   // an image reference, e.g. localhost/nanoclaw-agent:latest
	User        string   // "uid:gid", never 0 (the agent gives each group its own)
	Workdir     string   // absolute; empty: the image's WORKDIR
	Env         []string // KEY=VALUE
	Mounts      []Mount
	Tmpfs       []Tmpfs
	MemoryMB    int     // memory limit, MiB (swap is not allowed on top)
	CPUs        float64 // CPU limit; capped at the host's CPU count
	PidsLimit   int     // process (and thread) limit
	ShmMB       int     // /dev/shm, MiB (Chromium's shared memory): at most MemoryMB, which its pages count against; 0: the runtime's 64 MB
	Interactive bool    // keep stdin open (the caller writes the agent's input to it)
	// Cmd is the program and its arguments, run in place of the image's
	// ENTRYPOINT and CMD; empty runs the image's own.
	Cmd []string
}

// Limits every run gets, the same on every runtime.
const (
	// nofileLimit is RLIMIT_NOFILE, soft and hard. docker otherwise copies the
	// daemon's limits and podman takes containers.conf's: explicit, they agree.
	nofileLimit = 1024
	// nprocLimit is RLIMIT_NPROC for docker and podman. It counts every process
	// of the uid on the whole host, not per container (no user namespace), so
	// it is generous; the per-container bound is the pids cgroup (--pids-limit).
	// Raising a hard limit needs CAP_SYS_RESOURCE, which some hosts (this
	// project's CI among them) withhold even from root; 16384 stays below the
	// hard limits seen there.
	nprocLimit = 16384
)

var (
	// containerName is the only shape of container name nanoclaw creates,
	// stops or removes (findings 5, 6, 7); its folder part is
	// store.ValidateFolder's grammar.
	containerName = regexp.MustCompile(`^nanoclaw-[a-z0-9][a-z0-9-]{0,62}-[0-9]{1,20}$`)
	// imageRef is the rule for NANOCLAW_IMAGE and every tag: narrow, never
	// starting with '-', so it cannot be read as a flag.
	imageRef = regexp.MustCompile(`^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$`)
	envKey   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	userSpec = regexp.MustCompile(`^([0-9]{1,10}):([0-9]{1,10})$`)
)

// validateName checks a container name against the one shape nanoclaw uses.
func validateName(name string) error {
	if !containerName.MatchString(name) {
		return fmt.Errorf("invalid container name %q: want nanoclaw-<group folder>-<unix ms>", name)
	}
	return nil
}

// ValidateImage checks an image reference.
func ValidateImage(ref string) error {
	if len(ref) > 255 || !imageRef.MatchString(ref) {
		return fmt.Errorf("invalid image reference %q: want something like localhost/nanoclaw-agent:latest", ref)
	}
	return nil
}

// checkPath validates a path that goes into a --mount or --tmpfs argument:
// absolute, clean (so no "..", "." or "//"), valid UTF-8, and free of the
// characters those argument syntaxes use as separators or quotes — ',' and
// '=' (--mount key=value lists, which Apple's CLI splits on every '='), ':'
// (--tmpfs PATH:OPTIONS), '"' (docker reads --mount as CSV) — and of control
// characters.
func checkPath(what, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s is empty", what)
	case !utf8.ValidString(p):
		return fmt.Errorf("%s %q is not valid UTF-8", what, p)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%s %q is not absolute", what, p)
	case path.Clean(p) != p:
		return fmt.Errorf("%s %q is not clean (want %q; no '..', '.' or '//')", what, p, path.Clean(p))
	}
	for i, r := range p {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s %q has a control character at byte %d", what, p, i)
		}
		if strings.ContainsRune(`,:="`, r) {
			return fmt.Errorf("%s %q contains %q at byte %d, which the runtime's mount syntax cannot carry", what, p, r, i)
		}
	}
	return nil
}

// parseUser splits "uid:gid" and refuses root: the container never runs as
// root (and Claude Code refuses to bypass permissions as root).
func parseUser(u string) (uid, gid uint64, err error) {
	m := userSpec.FindStringSubmatch(u)
	if m == nil {
		return 0, 0, fmt.Errorf("invalid user %q: want numeric uid:gid, e.g. 1000:1000", u)
	}
	uid, err1 := strconv.ParseUint(m[1], 10, 32)
	gid, err2 := strconv.ParseUint(m[2], 10, 32)
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("invalid user %q: uid and gid must fit in 32 bits", u)
	case uid == 0 || gid == 0:
		return 0, 0, fmt.Errorf("invalid user %q: containers never run as root (uid or gid 0)", u)
	}
	return uid, gid, nil
}

// Validate checks every field of the Spec and reports all problems at once.
func (s *Spec) Validate() error {
	var errs []error
	add := func(err error) { errs = append(errs, err) } // errors.Join drops the nil ones
	add(validateName(s.Name))
	add(ValidateImage(s.Image))
	_, _, err := parseUser(s.User)
	add(err)
	if s.Workdir != "" {
		add(checkPath("workdir", s.Workdir))
	}
	keys := map[string]bool{}
	for _, kv := range s.Env {
		// Always KEY=VALUE: a bare KEY would make the CLI copy the host's
		// value into the container (finding 1: no credential may leak in).
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			add(fmt.Errorf("environment entry %q has no '=' (want KEY=VALUE)", kv))
		case !envKey.MatchString(k):
			add(fmt.Errorf("environment key %q is invalid (want letters, digits, '_', not starting with a digit)", k))
		case strings.ContainsAny(v, "\x00\n\r"):
			add(fmt.Errorf("environment value of %s contains a NUL or line break", k))
		case keys[k]:
			add(fmt.Errorf("environment key %s is given twice", k))
		}
		keys[k] = true
	}
	targets := map[string]bool{}
	target := func(what, t string) {
		if err := checkPath(what, t); err != nil {
			add(err)
			return
		}
		if t == "/" {
			add(fmt.Errorf("%s is the root directory", what))
		}
		if targets[t] {
			add(fmt.Errorf("%s %q is mounted twice", what, t))
		}
		targets[t] = true
	}
	for _, m := range s.Mounts {
		add(checkPath("mount source", m.Source))
		target("mount target", m.Target)
	}
	for _, t := range s.Tmpfs {
		target("tmpfs target", t.Target)
		if t.SizeMB < 1 || t.SizeMB > 1<<20 {
			add(fmt.Errorf("tmpfs %q size %d MiB is outside 1..%d", t.Target, t.SizeMB, 1<<20))
		}
	}
	// Resource limits are part of the hardening: none may be left out.
	if s.MemoryMB < 16 || s.MemoryMB > 1<<20 {
		add(fmt.Errorf("memory limit %d MiB is outside 16..%d", s.MemoryMB, 1<<20))
	}
	if math.IsNaN(s.CPUs) || s.CPUs < 0.01 || s.CPUs > 1024 {
		add(fmt.Errorf("CPU limit %v is outside 0.01..1024", s.CPUs))
	}
	if s.PidsLimit < 8 || s.PidsLimit > 1<<22 {
		add(fmt.Errorf("process limit %d is outside 8..%d", s.PidsLimit, 1<<22))
	}
	if s.ShmMB != 0 && (s.ShmMB < 1 || s.ShmMB > s.MemoryMB) {
		add(fmt.Errorf("/dev/shm size %d MiB is outside 1..%d (the memory limit; 0 for the runtime's default)", s.ShmMB, s.MemoryMB))
	}
	for i, a := range s.Cmd {
		if strings.ContainsRune(a, 0) {
			add(fmt.Errorf("command argument %d contains a NUL byte", i))
		}
	}
	if len(s.Cmd) > 0 && (s.Cmd[0] == "" || strings.HasPrefix(s.Cmd[0], "-") || strings.HasPrefix(s.Cmd[0], "[")) {
		// It becomes --entrypoint's value: never a flag, nor the JSON list
		// podman would read from a leading '['.
		add(fmt.Errorf("command %q is empty or starts with '-' or '['", s.Cmd[0]))
	}
	return errors.Join(errs...)
}

// hostCPUs is the CPU count limits are capped at: docker refuses a --cpus
// above it, and more than the host has limits nothing anyway.
var hostCPUs = runtime.NumCPU

// RunArgs returns the arguments (after the program name) that run s with
// this runtime's CLI, hardened: no network, non-root, no capabilities,
// no-new-privileges, read-only root, resource limits, and only the mounts in
// s. It has no side effects; the caller starts the program (see Command).
func (r *Runtime) RunArgs(s Spec) ([]string, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("container spec %s: %w", s.Name, err)
	}
	labels, err := r.labelArgs()
	if err != nil {
		return nil, err
	}
	cpus := math.Min(s.CPUs, float64(hostCPUs()))
	var a []string
	switch r.Kind {
	case Docker, Podman:
		a = r.linuxArgs(s, cpus)
	case Apple:
		a = appleArgs(s, cpus)
	default:
		return nil, fmt.Errorf("unknown container runtime kind %q", r.Kind)
	}
	if !r.Keep {
		a = slices.Insert(a, 1, "--rm")
	}
	// The label goes right after "run": both CLIs take --label there.
	return slices.Insert(a, 1, labels...), nil
}

// linuxArgs is the docker/podman command line; the two differ only where
// their defaults differ.
func (r *Runtime) linuxArgs(s Spec, cpus float64) []string {
	uid, gid, _ := parseUser(s.User)
	a := []string{"run", "--name", s.Name,
		// An init as PID 1 forwards SIGTERM (a graceful Stop) and reaps the
		// orphans Claude Code's tools leave behind.
		"--init",
		// Only a local image: never fetch something else under that name.
		"--pull", "never",
		// The agent's stdout is the host's to read; no second copy in the
		// runtime's log files.
		"--log-driver", "none",
		// finding 2: no interface but loopback; the gateway socket is the only way out.
		"--network", "none",
		"--user", s.User,
		"--cap-drop", "ALL",
		"--security-opt", "no-new-privileges",
		"--read-only",
	}
	if r.Kind == Podman {
		// podman's --read-only otherwise adds writable tmpfs on /run, /tmp and
		// /var/tmp; docker adds none. Only the Spec's tmpfs mounts, on both.
		// R8: and podman would copy the host's HTTP(S)_PROXY (credentials
		// and all) into the container.
		a = append(a, "--read-only-tmpfs=false", "--http-proxy=false")
	}
	for _, t := range s.Tmpfs {
		// exec: docker's tmpfs default is noexec, podman's is exec; agents run
		// scripts they write, so exec on both. nosuid,nodev: nothing on a
		// scratch file system may raise privileges or reach a device.
		// runc gives a tmpfs the mode of the image directory it covers, if
		// there is one; mode= applies otherwise.
		opts := fmt.Sprintf("rw,exec,nosuid,nodev,size=%dm", t.SizeMB)
		switch {
		case !t.Private:
			opts += ",mode=1777"
		case r.Kind == Podman:
			opts += ",mode=0700,U" // podman: U chowns it to --user
		default:
			opts += fmt.Sprintf(",mode=0700,uid=%d,gid=%d", uid, gid)
		}
		if r.Kind == Podman {
			// podman copies the image's files into a tmpfs; docker starts it
			// empty. Empty on both.
			opts += ",notmpcopyup"
		}
		a = append(a, "--tmpfs", t.Target+":"+opts)
	}
	a = append(a,
		"--pids-limit", strconv.Itoa(s.PidsLimit),
		"--memory", fmt.Sprintf("%dm", s.MemoryMB),
		"--memory-swap", fmt.Sprintf("%dm", s.MemoryMB), // equal to --memory: no swap
		"--cpus", strconv.FormatFloat(cpus, 'f', -1, 64),
		"--ulimit", fmt.Sprintf("nofile=%d:%d", nofileLimit, nofileLimit),
		"--ulimit", fmt.Sprintf("nproc=%d:%d", nprocLimit, nprocLimit),
	)
	if s.ShmMB > 0 {
		// The container's own /dev/shm (private IPC namespace on both), its
		// pages charged to the container's memory cgroup.
		a = append(a, fmt.Sprintf("--shm-size=%dm", s.ShmMB))
	}
	return append(a, commonTail(s)...)
}

// appleArgs is the command line of Apple's container CLI (1.0 or later).
// Each container is its own lightweight Linux VM: the guest kernel, not the
// Mac's, is what a process inside could attack, and the VM sees only the
// mounts listed. Where a docker/podman flag has no equivalent, the comment
// says what covers it.
func appleArgs(s Spec, cpus float64) []string {
	a := []string{"run", "--name", s.Name,
		"--init",
		// finding 2: Apple's CLI supports --network none (no vmnet attachment:
		// the VM has only loopback).
		"--network", "none",
		"--user", s.User,
		"--cap-drop", "ALL",
		// No --security-opt no-new-privileges in Apple's CLI. Covered by: all
		// capabilities dropped (bounding set included), the image has no
		// setuid/setgid programs (agentimage/Dockerfile strips them), and even
		// root inside is root only in the VM.
		"--read-only",
	}
	for _, t := range s.Tmpfs {
		// --tmpfs takes no options in Apple's CLI; --mount type=tmpfs takes
		// size and mode but no owner, so Private tmpfs are 1777 here too.
		a = append(a, "--mount", fmt.Sprintf("type=tmpfs,target=%s,size=%dM,mode=1777", t.Target, t.SizeMB))
	}
	a = append(a,
		// The VM's memory and vCPUs are the limits. Older releases accept only
		// whole CPUs: round up.
		"--memory", fmt.Sprintf("%dM", s.MemoryMB),
		"--cpus", strconv.Itoa(int(math.Ceil(cpus))),
		"--ulimit", fmt.Sprintf("nofile=%d:%d", nofileLimit, nofileLimit),
		// No --pids-limit in Apple's CLI. RLIMIT_NPROC stands in: inside the
		// VM only this container's processes run under its uid, so the
		// per-user limit is a per-container process limit here.
		"--ulimit", fmt.Sprintf("nproc=%d:%d", s.PidsLimit, s.PidsLimit),
	)
	// Not passed, and why: --pull never (Apple's run has no such flag; the
	// host checks ImageExists first), --log-driver (none in Apple's CLI; the
	// log goes with the container on --rm), --shm-size (none in Apple's CLI,
	// so ShmMB is not applied: /dev/shm is whatever the guest sets up, in the
	// VM's own memory, which --memory bounds; Chromium run with
	// --disable-dev-shm-usage uses /tmp instead).
	return append(a, commonTail(s)...)
}

// commonTail is what all three CLIs spell the same way: working directory,
// environment, bind mounts, stdin, entrypoint, image and command.
func commonTail(s Spec) []string {
	var a []string
	if s.Workdir != "" {
		a = append(a, "--workdir", s.Workdir)
	}
	for _, kv := range s.Env {
		a = append(a, "--env", kv)
	}
	for _, m := range s.Mounts {
		// --mount, not -v: docker's -v creates a missing source as root,
		// --mount refuses it; and the syntax is the same on all three CLIs.
		v := "type=bind,source=" + m.Source + ",target=" + m.Target
		if m.ReadOnly {
			v += ",readonly"
		}
		a = append(a, "--mount", v)
	}
	if s.Interactive {
		a = append(a, "--interactive")
	}
	if len(s.Cmd) == 0 {
		return append(a, s.Image)
	}
	// The command runs as given, whatever ENTRYPOINT the image names:
	// an image cannot wrap the agent (or the self-test's probe) in a
	// program of its own. --entrypoint also drops the image's CMD.
	a = append(a, "--entrypoint", s.Cmd[0], s.Image)
	return append(a, s.Cmd[1:]...)
}
