package sandbox

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ContainerName is the name of a group's container started at t:
// nanoclaw-<folder>-<unix ms>. folder must be a valid group folder name,
// the only one the name's shape admits (finding 5: nothing unchecked reaches
// a container name or a path).
func ContainerName(folder string, t time.Time) (string, error) {
	ms := t.UnixMilli()
	if ms < 0 {
		return "", fmt.Errorf("container name: time %v is before 1970", t)
	}
	name := "nanoclaw-" + folder + "-" + strconv.FormatInt(ms, 10)
	return name, validateName(name)
}

// removeTimeout bounds the forced removal Command does when its context ends.
const removeTimeout = 30 * time.Second

// Command returns the command that runs s in the foreground: its stdin,
// stdout and stderr are the container's (set them before Start), and it
// exits with the container's exit code.
//
// The CLI is only a client: killing it would leave the container running
// (docker's daemon and podman's conmon keep it). So when ctx ends, the
// container itself is removed forcefully before the CLI is killed. For a
// graceful end, call Stop first.
func (r *Runtime) Command(ctx context.Context, s Spec) (*exec.Cmd, error) {
	args, err := r.RunArgs(s)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, r.Bin, args...)
	cmd.Env = cliEnv(os.Getenv, false)
	cmd.Cancel = func() error {
		rctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
		defer cancel()
		_, _ = r.run(rctx, r.removeArgs(s.Name)...) // best effort; the CLI dies next either way
		return cmd.Process.Kill()
	}
	// After the kill, stop waiting for output the container can no longer send.
	cmd.WaitDelay = 10 * time.Second
	return cmd, nil
}

// stopSlack is how long Stop allows beyond the grace period for the CLI
// itself (it may wait for the runtime to clean up).
const stopSlack = 20 * time.Second

// Stop ends a container gracefully: SIGTERM (forwarded by its init to the
// agent), then SIGKILL after grace (rounded up to whole seconds), then it
// makes sure the container is removed. A container that is already gone is
// not an error.
func (r *Runtime) Stop(ctx context.Context, name string, grace time.Duration) error {
	if err := validateName(name); err != nil { // finding 7: only our names, as one argument
		return err
	}
	secs := int(math.Ceil(max(grace, 0).Seconds()))
	sctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+stopSlack)
	_, stopErr := r.run(sctx, "stop", "--time", strconv.Itoa(secs), name)
	cancel()
	// --rm removes a stopped container only while the CLI that ran it lives;
	// remove it here in case it did not.
	_, rmErr := r.run(ctx, r.removeArgs(name)...)
	if rmErr == nil {
		return nil
	}
	if names, err := r.names(ctx, true, "nanoclaw-"); err == nil && !slices.Contains(names, name) {
		return nil // gone
	}
	if strings.Contains(rmErr.Error(), "already in progress") {
		return nil // docker's --rm got there first
	}
	return fmt.Errorf("stop container %s: stop: %v; remove: %w", name, stopErr, rmErr)
}

// removeArgs forcefully removes containers (running ones are killed).
func (r *Runtime) removeArgs(names ...string) []string {
	switch r.Kind {
	case Apple:
		return append([]string{"delete", "--force"}, names...)
	case Podman:
		// --time 0: kill at once; podman would otherwise wait 10 s after SIGTERM.
		return append([]string{"rm", "--force", "--time", "0"}, names...)
	default:
		return append([]string{"rm", "--force"}, names...)
	}
}

// prefixPattern is what RemoveStale and List accept as a name prefix: only
// nanoclaw's own containers can ever be selected.
var prefixPattern = regexp.MustCompile(`^nanoclaw-[a-z0-9-]*$`)

// RemoveStale removes every container whose name starts with prefix
// (which must start with "nanoclaw-"), running or stopped, in one call, and
// returns their names. At start-up it clears what a killed host left behind.
func (r *Runtime) RemoveStale(ctx context.Context, prefix string) ([]string, error) {
	names, err := r.names(ctx, true, prefix)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	// finding 6: the names go to the CLI as separate arguments, never through a shell.
	if _, err := r.run(ctx, r.removeArgs(names...)...); err != nil {
		return nil, fmt.Errorf("remove stale containers %s: %w", strings.Join(names, ", "), err)
	}
	// R13: confirmed gone, not only asked to go: the caller opens those
	// groups' sockets again next.
	left, err := r.names(ctx, true, prefix)
	if err != nil {
		return nil, fmt.Errorf("check that stale containers are gone: %w", err)
	}
	if len(left) > 0 {
		return nil, fmt.Errorf("stale containers still there after removal: %s (remove them with `%s rm --force %s`)", strings.Join(left, ", "), r.Kind, strings.Join(left, " "))
	}
	return names, nil
}

// List returns the names of the running containers whose names start with
// prefix (which must start with "nanoclaw-").
func (r *Runtime) List(ctx context.Context, prefix string) ([]string, error) {
	return r.names(ctx, false, prefix)
}

// names lists containers (all, or only running ones) whose names start with
// prefix and have the shape of a nanoclaw container name.
func (r *Runtime) names(ctx context.Context, all bool, prefix string) ([]string, error) {
	if !prefixPattern.MatchString(prefix) {
		return nil, fmt.Errorf("invalid container name prefix %q: want nanoclaw-…", prefix)
	}
	labels, err := r.labelArgs()
	if err != nil {
		return nil, err
	}
	args := []string{"ps", "--format", "{{.Names}}"}
	if r.Kind == Apple {
		// IDs, which are the --name given to run. Apple's list has no label
		// filter: there the name prefix alone selects.
		args = []string{"list", "--quiet"}
	} else if labels != nil {
		args = append(args, "--filter", "label="+labels[1])
	}
	if all {
		args = append(args, "--all")
	}
	out, err := r.run(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		n := strings.TrimSpace(line)
		// Only names nanoclaw could have made: anything else stays untouched.
		if strings.HasPrefix(n, prefix) && validateName(n) == nil {
			names = append(names, n)
		}
	}
	return names, nil
}
