// Command probe runs inside a test container and reports, as one JSON object
// on stdout, what the container may do: who it runs as, its capabilities,
// network interfaces, which paths it can write, its limits. It needs no shell
// and no tools from the image (it is built static and bind-mounted).
//
// Usage: probe PATH... — each PATH is tried for writing (a file is created
// in it and removed again).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

type report struct {
	UID, GID   int
	CapEff     string
	NoNewPrivs string
	Interfaces []string
	Write      map[string]string // path → "ok" or the error
	Mode       map[string]string // path → mode uid:gid
	PidsMax    string
	MemoryMax  string
	Nofile     [2]uint64
	Nproc      [2]uint64
	Home       string
	PID1       string // the command line of PID 1
}

func main() {
	r := report{UID: os.Getuid(), GID: os.Getgid(), Write: map[string]string{}, Mode: map[string]string{}}
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "CapEff":
			r.CapEff = strings.TrimSpace(v)
		case "NoNewPrivs":
			r.NoNewPrivs = strings.TrimSpace(v)
		}
	}
	entries, _ := os.ReadDir("/sys/class/net")
	for _, e := range entries {
		r.Interfaces = append(r.Interfaces, e.Name())
	}
	for _, dir := range os.Args[1:] {
		f := filepath.Join(dir, ".probe-write-test")
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			r.Write[dir] = err.(*os.PathError).Err.Error()
		} else {
			os.Remove(f)
			r.Write[dir] = "ok"
		}
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err == nil {
			r.Mode[dir] = fmt.Sprintf("%o %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
		}
	}
	r.PidsMax = first("/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/pids/pids.max")
	r.MemoryMax = first("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		r.Nofile = [2]uint64{rl.Cur, rl.Max}
	}
	const rlimitNproc = 6
	if syscall.Getrlimit(rlimitNproc, &rl) == nil {
		r.Nproc = [2]uint64{rl.Cur, rl.Max}
	}
	r.Home = os.Getenv("HOME")
	cmdline, _ := os.ReadFile("/proc/1/cmdline")
	r.PID1 = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	json.NewEncoder(os.Stdout).Encode(r)
}

func first(paths ...string) string {
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}
