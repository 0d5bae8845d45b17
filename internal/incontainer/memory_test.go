package incontainer

// Tests of global memory: GlobalMemory's reading of the shared CLAUDE.md
// (cut, refused when not a plain file) and how Run hands it, with a
// resumed session, to the fake Claude Code of runner_test.go.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

func TestRunResumesWithGlobalMemory(t *testing.T) {
	for _, main := range []bool{false, true} {
		t.Run(fmt.Sprintf("main=%v", main), func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				c.SessionID = "0b5c7a52-6a43-4d4e-9a53-2c1f0e7d9a10"
				c.Main = main
			})
			if err := os.WriteFile(filepath.Join(h.cfg.GlobalDir, "CLAUDE.md"), []byte("- global marker-g\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			h.start(t)
			h.gw.Prompt("p1", "hi")
			if o := h.output(t); o.SessionID != h.cfg.SessionID || o.Result != "echo hi #1" {
				t.Errorf("output %+v; want the resumed session", o)
			}
			h.gw.Send(ipc.Input{Kind: ipc.InputClose})
			if err := h.result(t, 10*time.Second); err != nil {
				t.Fatal(err)
			}
			recs := h.records(t)
			if len(recs) != 1 {
				t.Fatalf("%d processes", len(recs))
			}
			args := recs[0].Args
			if !slices.Contains(args, "--resume="+h.cfg.SessionID) {
				t.Errorf("args %q lack --resume=%s", args, h.cfg.SessionID)
			}
			mem := recs[0].Memory
			for _, a := range args {
				if strings.Contains(a, "global marker") {
					t.Errorf("global memory is on the command line, readable by every user in /proc: %q", a)
				}
			}
			if !strings.Contains(mem, "- global marker-g") || strings.Contains(mem, "You may edit") != main {
				t.Errorf("global memory argument %q (main %v)", mem, main)
			}
		})
	}
}

func TestGlobalMemory(t *testing.T) {
	write := func(text string) func(string) error {
		return func(path string) error { return os.WriteFile(path, []byte(text), 0o644) }
	}
	for _, c := range []struct {
		name   string
		make   func(path string) error // makes CLAUDE.md; nil for none
		want   []string                // in the memory; nil for none
		hasErr bool
	}{
		{"no file", nil, nil, false},
		{"blank file", write(" \n\t\n"), nil, false},
		{"big file", write(strings.Repeat("ab\n", MaxMemoryBytes)), []string{"[global memory cut at", "read-only"}, false},
		{"a directory", func(path string) error { return os.Mkdir(path, 0o700) }, nil, true}, // unreadable as a file
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.make != nil {
				if err := c.make(filepath.Join(dir, "CLAUDE.md")); err != nil {
					t.Fatal(err)
				}
			}
			m, err := GlobalMemory(dir, false)
			if (err != nil) != c.hasErr || (m != "") != (c.want != nil) || len(m) > MaxMemoryBytes+1024 {
				t.Fatalf("memory of %d bytes, %v", len(m), err)
			}
			for _, w := range c.want {
				if !strings.Contains(m, w) {
					t.Errorf("memory lacks %q", w)
				}
			}
		})
	}
}

// Main's agent writes global memory and every group reads it: a FIFO in its
// place must not hang a group's start, and a link must not be followed.
func TestGlobalMemoryRefusesFIFOsAndLinks(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "CLAUDE.md"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := GlobalMemory(dir, false); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a FIFO was read as global memory")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("GlobalMemory blocked on a FIFO")
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "secret"), []byte("not memory"), 0o644)
	os.Remove(filepath.Join(dir, "CLAUDE.md"))
	os.Symlink(filepath.Join(other, "secret"), filepath.Join(dir, "CLAUDE.md"))
	if m, err := GlobalMemory(dir, false); err == nil || strings.Contains(m, "not memory") {
		t.Errorf("a link was followed: %q, %v", m, err)
	}
}
