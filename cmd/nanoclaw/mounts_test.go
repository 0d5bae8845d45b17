package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

func TestMountsCheck(t *testing.T) {
	base, _ := filepath.EvalSymlinks(t.TempDir())
	env := map[string]string{"NANOCLAW_CONFIG_DIR": filepath.Join(base, "conf"), "NANOCLAW_HOME": filepath.Join(base, "home")}
	for _, d := range []string{"conf", "home/store", "root/proj", "root/.ssh"} {
		os.MkdirAll(filepath.Join(base, d), 0o755)
	}
	code, out, _ := run(t, env, "mounts", "check")
	if code != 0 || !strings.Contains(out, "no extra mounts are allowed") {
		t.Fatalf("no file: code %d, out %q", code, out)
	}
	file := filepath.Join(base, "conf", "mount-allowlist.json")
	os.WriteFile(file, []byte(`{"allowedRoots":[{"path":"`+base+`/root"}],"nonMainReadonly":true}`), 0o600)
	code, _, errOut := run(t, env, "mounts", "check")
	if code != 1 || !strings.Contains(errOut, file) || !strings.Contains(errOut, "nonMainReadonly") {
		t.Fatalf("malformed file: code %d, stderr %q", code, errOut)
	}
	os.WriteFile(file, []byte(`{"allowedRoots":[{"path":"`+base+`/root","allowReadWrite":true}],"nonMainReadOnly":true}`), 0o600)

	st, err := store.Open(context.Background(), filepath.Join(base, "home", "store", "nanoclaw.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.PutGroup(context.Background(), store.Group{Folder: "fam", Name: "fam", Trigger: "@Andy", AddedAt: time.Now(),
		Config: store.ContainerConfig{AdditionalMounts: []store.Mount{
			{HostPath: base + "/root/proj", ContainerPath: "proj"},
			{HostPath: base + "/root/.ssh", ContainerPath: "ssh"},
			{HostPath: base + "/home", ContainerPath: "home"},
		}}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = run(t, env, "mounts", "check", "--group", "fam")
	if code != 0 {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"allowed read-only  " + base + "/root/proj -> /workspace/extra/proj (read-write asked, but nonMainReadOnly",
		"rejected   " + base + "/root/.ssh -> ssh: ",
		"rejected   " + base + "/home -> home: host path " + base + "/home overlaps nanoclaw's own",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
