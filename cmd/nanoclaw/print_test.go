package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// R10: task prompts and results (an agent wrote them) and group names
// (main's model may set them) reach the terminal without escape sequences.
func TestTaskAndGroupOutputStripped(t *testing.T) {
	const osc52 = "\x1b]52;c;ZXZpbA==\x07"
	const csi = "\x1b[2J\x1b[H"
	var out bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &out}
	m.printTask(ipc.TaskInfo{ID: "t1", Group: "g", Prompt: "do it" + osc52 + csi, LastResult: "done" + osc52, ScheduleValue: "0\r9 * * *" + csi,
		Runs: []ipc.TaskRun{{StartedAt: time.Now(), Result: "r" + csi}}}, time.UTC)
	m.printGroup(ipc.GroupInfo{Folder: "g", Name: "family" + osc52, Trigger: "@Andy" + csi})
	if s := out.String(); strings.ContainsAny(s, "\x1b\x07\r") || !strings.Contains(s, "do it") || !strings.Contains(s, "family") {
		t.Errorf("terminal output:\n%q", s)
	}
}
