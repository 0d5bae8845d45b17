package incontainer

// What a turn leaves running detached — agent-browser's daemon, Chromium
// and its helpers, `cmd &` from a Bash call — is reparented to this process
// (a child subreaper) instead of the container's init, and killed after
// the turn's answer is posted and again when the run ends. The package is
// built for Linux only (it uses Pdeathsig and /proc), so there is no
// variant for other systems.

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER of <linux/prctl.h>; the
// syscall package does not name it.
const prSetChildSubreaper = 36

// StrayBound is how long KillStrays keeps killing and reaping before it
// gives up on what is left (a process stuck in the kernel).
const StrayBound = 3 * time.Second

// becomeSubreaper makes orphaned descendants of this process its children
// rather than the container init's, so that it can find and end them.
func becomeSubreaper() error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		return os.NewSyscallError("prctl PR_SET_CHILD_SUBREAPER", e)
	}
	return nil
}

// proc is one line of /proc/<pid>/stat, the fields KillStrays needs.
type proc struct {
	pid, ppid int
	state     byte   // 'Z' for a zombie
	start     uint64 // start time in clock ticks since boot: with pid, the process's identity
	name      string // comm, as the process named itself (cleaned)
}

// KillStrays kills every process whose parent is this process, except
// keep (Claude Code, whose tree is never touched; 0 for none), and all
// their descendants, and reaps this process's children among them,
// including zombies that exited on their own. It scans again until none
// is left or bound has passed (an error then says how many remain), and
// returns the names of the processes it killed.
//
// Only the children it names are waited for (wait4 on their pid), never
// any child: os/exec waits for Claude Code.
func KillStrays(keep int, bound time.Duration) (killed []string, err error) {
	self := os.Getpid()
	deadline := time.Now().Add(bound)
	signalled := map[int]uint64{} // pid → start time of what was killed
	pause := time.Millisecond
	for {
		procs, err := readProcs()
		if err != nil {
			return killed, err
		}
		strays := strayTrees(procs, self, keep)
		if len(strays) == 0 {
			return killed, nil
		}
		for _, p := range strays {
			if p.state == 'Z' {
				continue // dead: only its parent's wait (or ours, below) removes it
			}
			if start, ok := signalled[p.pid]; !ok || start != p.start {
				signalled[p.pid] = p.start
				killed = append(killed, p.name)
			}
			killSame(p)
		}
		for _, p := range strays {
			if p.ppid == self {
				var ws syscall.WaitStatus
				syscall.Wait4(p.pid, &ws, syscall.WNOHANG, nil) //nolint:errcheck // not dead yet: the next scan comes back to it
			}
		}
		if time.Now().After(deadline) {
			return killed, fmt.Errorf("%d processes left running or unreaped after %v", len(strays), bound)
		}
		// A killed process's children reach this process only once it has
		// died; rescan soon, then less often.
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// killSame sends SIGKILL to p if the pid is still p: between the scan and
// the signal the process may have died and its pid been reused, perhaps
// in Claude Code's tree. os.FindProcess holds a pidfd (Linux 5.3 and
// later), so the start time read after it is that of the process the
// signal goes to.
func killSame(p proc) {
	pr, err := os.FindProcess(p.pid)
	if err != nil {
		return
	}
	defer pr.Release()
	if now, err := readProc(p.pid); err != nil || now.start != p.start {
		return
	}
	pr.Signal(syscall.SIGKILL) //nolint:errcheck // gone already is fine
}

// strayTrees is every process in procs whose parent is self, other than
// keep, and all their descendants.
func strayTrees(procs map[int]proc, self, keep int) []proc {
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	var out []proc
	todo := slices.DeleteFunc(slices.Clone(children[self]), func(pid int) bool { return pid == keep })
	for len(todo) > 0 {
		pid := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		out = append(out, procs[pid])
		todo = append(todo, children[pid]...)
	}
	return out
}

// readProcs reads every process's stat; one that ends while it reads is
// left out.
func readProcs() (map[int]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	procs := make(map[int]proc, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if p, err := readProc(pid); err == nil {
			procs[pid] = p
		}
	}
	return procs, nil
}

// readProc parses /proc/<pid>/stat (proc(5)). The name (field 2) is the
// process's own choice and may hold spaces and parentheses: the fields
// after it are found from its last ')'.
func readProc(pid int) (proc, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return proc{}, errors.New("unreadable stat")
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return proc{}, errors.New("unreadable stat")
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64) // field 22, starttime
	if err1 != nil || err2 != nil {
		return proc{}, errors.New("unreadable stat")
	}
	return proc{pid: pid, ppid: ppid, state: f[0][0], start: start, name: sanitize.Clip(sanitize.Name(s[open+1:end]), 32, "…")}, nil
}

// strayNames is the log's summary of what a cleanup killed: each name
// once, with a count when more than one, at most ten names.
func strayNames(names []string) string {
	counts := map[string]int{}
	var order []string
	for _, n := range names {
		if n == "" {
			n = "?"
		}
		if counts[n] == 0 {
			order = append(order, n)
		}
		counts[n]++
	}
	var parts []string
	for i, n := range order {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more names", len(order)-10))
			break
		}
		if c := counts[n]; c > 1 {
			n += " ×" + strconv.Itoa(c)
		}
		parts = append(parts, n)
	}
	return strings.Join(parts, ", ")
}
