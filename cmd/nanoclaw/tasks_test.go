package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// R9: `nanoclaw tasks list` loaded every task of every group and filtered
// them in the CLI. It now gets the daemon's bounded answer (here on the
// database, the daemon being down): active and paused tasks unless --all,
// the newest ipc.ListTasksLimit, and a line saying how many more there are.
func TestTasksListIsBounded(t *testing.T) {
	_, env, open := ownerWorld(t)
	ctx := context.Background()
	st := open()
	created := time.Now().Add(-time.Hour)
	for i := range 150 {
		next := created.Add(2 * time.Hour)
		task := store.Task{ID: fmt.Sprintf("task-%03d", i), Folder: "family", ChatJID: "local:family", Prompt: strings.Repeat("p", 16<<10),
			ScheduleType: store.ScheduleInterval, ScheduleValue: "3600000", Timezone: "UTC", ContextMode: store.ContextIsolated,
			Status: store.TaskActive, NextRun: &next, CreatedAt: created.Add(time.Duration(i) * time.Second)}
		if err := st.CreateTaskWithin(ctx, task, store.TaskCaps{}); err != nil {
			t.Fatal(err)
		}
		if i >= 120 {
			if err := st.SetTaskStatus(ctx, task.ID, store.TaskCancelled); err != nil {
				t.Fatal(err)
			}
		}
	}
	st.Close()

	for _, tc := range []struct {
		args  []string
		first string
		more  int
	}{
		{[]string{"tasks", "list"}, "task-119", 20},
		{[]string{"tasks", "list", "--all"}, "task-149", 50},
	} {
		code, out, errOut := run(t, env, tc.args...)
		if code != cli.ExitOK {
			t.Fatalf("%v: exit %d, %s", tc.args, code, errOut)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 1+ipc.ListTasksLimit || !strings.HasPrefix(lines[1], tc.first) {
			t.Errorf("%v: %d lines, the first task %q; want a header and %d tasks, %s first", tc.args, len(lines), lines[min(1, len(lines)-1)], ipc.ListTasksLimit, tc.first)
		}
		if want := fmt.Sprintf("and %d older tasks not shown", tc.more); !strings.Contains(errOut, want) {
			t.Errorf("%v: stderr %q, want it to say %q", tc.args, errOut, want)
		}
		if tc.more == 20 && strings.Contains(out, "cancelled") {
			t.Errorf("%v lists cancelled tasks", tc.args)
		}
	}
}
