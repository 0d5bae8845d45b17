// Package sandbox drives the container CLIs — docker, podman and Apple's
// container — behind one type. It turns a Spec into the hardened `run`
// command line of each CLI, and starts, stops, lists and removes containers
// and builds images.
//
// Every program is started with an argument vector, never through a shell,
// and every value that becomes an argument is validated first (findings 6
// and 7): container names, image references, paths, environment variables.
package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// Kind names a container CLI.
type Kind string

// The container CLIs nanoclaw knows, and Auto: the first of them that is
// installed and working.
const (
	Auto   Kind = "auto"
	Docker Kind = "docker"
	Podman Kind = "podman"
	Apple  Kind = "container" // Apple's container CLI: one lightweight VM per container
)

// ParseKind checks a chosen runtime (NANOCLAW_RUNTIME): Auto or a CLI.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case Auto, Docker, Podman, Apple:
		return k, nil
	}
	return "", fmt.Errorf("unknown container runtime %q: use auto, docker, podman or container", s)
}

// Runtime is one installed, working container CLI.
type Runtime struct {
	Kind Kind
	Bin  string // absolute path of the CLI program
	// Instance, when set, labels every container this host starts
	// (nanoclaw.instance=Instance), and List and RemoveStale then see only
	// those: two hosts on one machine (two users, or parallel tests) never
	// remove each other's containers. Lowercase letters and digits, ≤ 32.
	Instance string
	// Keep, when set, leaves each container in place when it exits (no
	// --rm) for the caller to Inspect, then remove with Stop; RemoveStale
	// clears what a killed caller left. The self-test sets it: the
	// runtime's own word on a container can be read only while it exists.
	Keep bool
}

// instanceLabel is the label key that ties a container to its host.
const instanceLabel = "nanoclaw.instance"

var instancePattern = regexp.MustCompile(`^[a-z0-9]{1,32}$`)

// labelArgs are the run flags that mark a container as this host's.
func (r *Runtime) labelArgs() ([]string, error) {
	if r.Instance == "" {
		return nil, nil
	}
	if !instancePattern.MatchString(r.Instance) {
		return nil, fmt.Errorf("invalid runtime instance %q: want 1-32 lowercase letters or digits", r.Instance)
	}
	return []string{"--label", instanceLabel + "=" + r.Instance}, nil
}

// cliEnvNames are the variables a container CLI may get from the daemon's
// environment: where to find its daemon, configuration and storage, and
// nothing else. R8: the CLIs do not inherit the daemon's environment — no
// credential (ANTHROPIC_API_KEY may be set there), and no proxy settings,
// which podman would copy into every container.
var cliEnvNames = []string{
	"PATH", "HOME", "USER", "LOGNAME", "TMPDIR", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "DBUS_SESSION_BUS_ADDRESS",
	"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_API_VERSION",
	"CONTAINER_HOST", "CONTAINER_CONNECTION", "CONTAINER_SSHKEY", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF", "CONTAINERS_REGISTRIES_CONF",
}

// proxyEnvNames reach only image builds, which fetch from the network
// through the host's proxy.
var proxyEnvNames = []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}

// cliEnv is the explicit environment of a container CLI: the variables of
// cliEnvNames that are set (proxyEnvNames too when build is true), and a
// PATH in any case.
func cliEnv(getenv func(string) string, build bool) []string {
	names := cliEnvNames
	if build {
		names = slices.Concat(cliEnvNames, proxyEnvNames)
	}
	var env []string
	for _, n := range names {
		if v := getenv(n); v != "" {
			env = append(env, n+"="+v)
		}
	}
	if passEnvPrefix != "" {
		for _, kv := range os.Environ() {
			if strings.HasPrefix(kv, passEnvPrefix) {
				env = append(env, kv)
			}
		}
	}
	if getenv("PATH") == "" {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	return env
}

// passEnvPrefix, set only by this package's tests, lets variables with
// that prefix through to the CLI (the fake CLI is configured by them).
var passEnvPrefix string

// probeTimeout bounds the check that a CLI works (a stuck daemon must not
// hang start-up).
const probeTimeout = 20 * time.Second

// clis says of each CLI the cheapest command that fails when it cannot run
// containers (daemon down, podman machine stopped, container system
// stopped), how to make it work, and where to get it.
var clis = map[Kind]struct {
	probe        []string
	fix, install string
}{
	Docker: {[]string{"version", "--format", "{{.Server.Version}}"},
		"start the Docker daemon (e.g. `sudo systemctl start docker`, or Docker Desktop) and make sure your user may use it",
		"install Docker: https://docs.docker.com/engine/install/"},
	Podman: {[]string{"info", "--format", "{{.Host.Arch}}"},
		"run `podman info` to see what is wrong (on macOS: `podman machine start`)",
		"install podman: https://podman.io/docs/installation (Debian/Ubuntu: apt-get install podman)"},
	Apple: {[]string{"system", "status"},
		"run `container system start`",
		"install Apple's container (macOS on Apple silicon): https://github.com/apple/container/releases"},
}

// autoOrder is the order in which auto detection tries the CLIs: Apple's
// container first on macOS (a VM per container), podman (daemonless) before
// docker elsewhere.
func autoOrder(goos string) []Kind {
	if goos == "darwin" {
		return []Kind{Apple, Docker, Podman}
	}
	return []Kind{Podman, Docker}
}

// Detect finds the container CLI to use. want is Auto (or empty): the
// first installed and working one; or a CLI: exactly that one. The error
// names every CLI tried, what went wrong with each, and how to fix it.
func Detect(ctx context.Context, want Kind) (*Runtime, error) {
	if _, err := ParseKind(string(want)); err != nil && want != "" {
		return nil, err
	}
	kinds := []Kind{want}
	if want == "" || want == Auto {
		kinds = autoOrder(runtime.GOOS)
	}
	var problems, tried []string
	for _, k := range kinds {
		tried = append(tried, string(k))
		r, err := detectOne(ctx, k)
		if err == nil {
			return r, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("detect container runtime: %w", ctx.Err())
		}
		problems = append(problems, err.Error())
	}
	if len(kinds) == 1 {
		return nil, fmt.Errorf("container runtime %s is not usable: %s", want, problems[0])
	}
	return nil, fmt.Errorf("no working container runtime (tried %s):\n  %s\nInstall one, or fix it, or choose one with NANOCLAW_RUNTIME",
		strings.Join(tried, ", "), strings.Join(problems, "\n  "))
}

func detectOne(ctx context.Context, k Kind) (*Runtime, error) {
	bin, err := exec.LookPath(string(k))
	if err != nil {
		return nil, fmt.Errorf("%s: not installed (not found in PATH); %s", k, clis[k].install)
	}
	r := &Runtime{Kind: k, Bin: bin}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if _, err := r.run(pctx, clis[k].probe...); err != nil {
		return nil, fmt.Errorf("%s: installed at %s but not working (%v); %s", k, bin, err, clis[k].fix)
	}
	return r, nil
}

// run runs the CLI with args and returns its stdout. A failure carries the
// command and the first line of its stderr.
func (r *Runtime) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, r.Bin, args...)
	cmd.Env = cliEnv(os.Getenv, false)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &cliError{Args: args, Err: err, Stderr: sanitize.FirstLine(stderr.String(), 300)}
	}
	return stdout.Bytes(), nil
}

// cliError is a container CLI command that failed.
type cliError struct {
	Args   []string // the arguments after the program name
	Err    error    // usually an *exec.ExitError
	Stderr string   // the first line of what the CLI printed on stderr
}

// Error says which command failed, how, and what the CLI said.
func (e *cliError) Error() string {
	cmd := sanitize.Clip(strings.Join(e.Args, " "), 80, "…")
	if e.Stderr == "" {
		return fmt.Sprintf("`%s` failed: %v", cmd, e.Err)
	}
	return fmt.Sprintf("`%s` failed: %v: %s", cmd, e.Err, e.Stderr)
}

// Unwrap returns the underlying error, usually an *exec.ExitError.
func (e *cliError) Unwrap() error { return e.Err }
