package main

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/agentimage"
	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

func TestImageUsage(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no runtime can be found: nothing is built by accident
	cases := []struct {
		args   []string
		env    map[string]string
		code   int
		stdout string
		stderr string
	}{
		{[]string{"image", "--help"}, nil, cli.ExitOK, "Usage: nanoclaw image <subcommand>", ""},
		{[]string{"help", "image"}, nil, cli.ExitOK, "build    build the image", ""},
		{[]string{"help", "image"}, nil, cli.ExitOK, "status   say whether the image is there and current", ""},
		{[]string{"help", "image"}, nil, cli.ExitOK, "agent-browser (about 1 GB more), which groups set to browser=true run on", ""},
		{[]string{"image", "build", "--help"}, nil, cli.ExitOK, "Usage: nanoclaw image build [--browser] [--base IMAGE] [--tag IMAGE] [--if-needed]", ""},
		{[]string{"image", "build", "--help"}, nil, cli.ExitOK, "Chromium and agent-browser", ""},
		{[]string{"image", "status", "--help"}, nil, cli.ExitOK, "Usage: nanoclaw image status [--browser [--if-used]] [--tag IMAGE]", ""},
		{[]string{"image", "status", "--help"}, nil, cli.ExitOK, "NANOCLAW_BROWSER_IMAGE", ""},
		{[]string{"image"}, nil, cli.ExitUsage, "", "nanoclaw image: missing subcommand (build or status)"},
		{[]string{"image", "push"}, nil, cli.ExitUsage, "", `unknown subcommand "push"`},
		{[]string{"image", "--bogus"}, nil, cli.ExitUsage, "", "flag provided but not defined: -bogus"},
		{[]string{"image", "build", "extra"}, nil, cli.ExitUsage, "", `unexpected argument "extra"`},
		{[]string{"image", "build", "--bogus"}, nil, cli.ExitUsage, "", "flag provided but not defined"},
		{[]string{"image", "build", "--base", "--privileged"}, nil, cli.ExitUsage, "", `--base: invalid image reference "--privileged"`},
		{[]string{"image", "build", "--tag", "a b"}, nil, cli.ExitUsage, "", `--tag: invalid image reference "a b"`},
		{[]string{"image", "build", "--base"}, nil, cli.ExitUsage, "", "flag needs an argument: -base"},
		{[]string{"image", "build", "--if-needed=maybe"}, nil, cli.ExitUsage, "", "invalid boolean value"},
		{[]string{"image", "status", "extra"}, nil, cli.ExitUsage, "", `unexpected argument "extra"`},
		{[]string{"image", "status", "--tag", "-x"}, nil, cli.ExitUsage, "", `--tag: invalid image reference "-x"`},
		{[]string{"image", "status", "--base", "x"}, nil, cli.ExitUsage, "", "flag provided but not defined: -base"},
		// Past the usage checks: a bad setting or no runtime is a failure (exit 1).
		{[]string{"image", "build"}, map[string]string{"NANOCLAW_RUNTIME": "lxc"}, cli.ExitFailure, "", "NANOCLAW_RUNTIME"},
		{[]string{"image", "build"}, map[string]string{"NANOCLAW_RUNTIME": "docker"}, cli.ExitFailure, "",
			"container runtime docker is not usable: docker: not installed"},
		{[]string{"image", "build"}, nil, cli.ExitFailure, "", "no working container runtime"},
		{[]string{"image", "build", "--if-needed"}, nil, cli.ExitFailure, "", "no working container runtime"},
		{[]string{"image", "build", "--browser=maybe"}, nil, cli.ExitUsage, "", "invalid boolean value"},
		{[]string{"image", "build", "--browser"}, map[string]string{"NANOCLAW_BROWSER_IMAGE": "-x"}, cli.ExitFailure, "", "NANOCLAW_BROWSER_IMAGE"},
		{[]string{"image", "build", "--browser"}, nil, cli.ExitFailure, "", "no working container runtime"},
		{[]string{"image", "status", "--browser"}, nil, cli.ExitFailure, "", "no working container runtime"},
		{[]string{"image", "status"}, nil, cli.ExitFailure, "", "no working container runtime"},
	}
	for _, tc := range cases {
		code, out, errOut := run(t, tc.env, tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errOut)
		}
		if !strings.Contains(out, tc.stdout) || (tc.stdout == "" && out != "") {
			t.Errorf("%v: stdout %q, want %q", tc.args, out, tc.stdout)
		}
		if !strings.Contains(errOut, tc.stderr) || (tc.stderr == "" && errOut != "") {
			t.Errorf("%v: stderr %q, want %q", tc.args, errOut, tc.stderr)
		}
	}
}

// What `image build` asks the runtime for: scripts/test-env relies on the
// labels, and the Dockerfile on the build arguments.
func TestImageBuildOptions(t *testing.T) {
	o := imageBuildOptions("/tmp/ctx", "localhost/debian:bookworm-slim", "localhost/nanoclaw-agent:test", "linux-x64", imageTarget(false))
	if o.ContextDir != "/tmp/ctx" || o.Dockerfile != "/tmp/ctx/Dockerfile" || o.Tag != "localhost/nanoclaw-agent:test" || o.Target != "agent" {
		t.Errorf("options %+v", o)
	}
	wantArgs := map[string]string{"BASE": "localhost/debian:bookworm-slim", "CLAUDE_CODE_PLATFORM": "linux-x64",
		"NANOCLAW_DOCKERFILE_SHA256": agentimage.DockerfileDigest(), "NANOCLAW_BASE": "localhost/debian:bookworm-slim"}
	if !maps.Equal(o.BuildArgs, wantArgs) {
		t.Errorf("build args %v, want %v", o.BuildArgs, wantArgs)
	}
	// The labels are the Dockerfile's (agentimage.TestDockerfileLabels), not
	// --label, which podman's cache ignores.
	if len(o.Labels) != 0 {
		t.Errorf("labels %v given with --label", o.Labels)
	}
	// Without --base the Dockerfile's own default applies: no BASE argument.
	// --browser builds the browser stage.
	o = imageBuildOptions("/tmp/ctx", "", "x", "linux-arm64", imageTarget(true))
	if _, ok := o.BuildArgs["BASE"]; ok || o.BuildArgs["CLAUDE_CODE_PLATFORM"] != "linux-arm64" || o.BuildArgs["NANOCLAW_BASE"] != "" {
		t.Errorf("without --base: %+v", o)
	}
	if o.Target != "browser" {
		t.Errorf("browser image: target %q", o.Target)
	}
}

// The browser image: `image build --browser` builds the browser stage under
// the given tag, `image status --browser` finds it current, and each variant
// under the other's name is stale, with the command that fixes it.
func TestImageBuildBrowser(t *testing.T) {
	bin := testenv.Runtime(t, "podman")
	testenv.Image(t, bin, testenv.BrowserImage) // its layers make this build a cached one
	env, home := homeEnv(t)
	tag := freshTag(t, bin, "browser")
	env = append(env, "NANOCLAW_RUNTIME=podman", "NANOCLAW_IMAGE="+testenv.AgentImage, "NANOCLAW_BROWSER_IMAGE="+tag)

	code, _, errOut := runProgram(t, env, binary, "image", "status", "--browser")
	if want := "nanoclaw image: " + tag + " (podman) is missing: run 'nanoclaw image build --browser'\n"; code != 1 || errOut != want {
		t.Fatalf("status of no browser image: exit %d, stderr %q; want 1, %q", code, errOut, want)
	}
	// --if-used: missing is fine while no group has the browser, and is
	// what to fix once one has ('make run' builds it then).
	code, out, errOut := runProgram(t, env, binary, "image", "status", "--browser", "--if-used")
	if code != 0 || out != tag+": no group has browser=true, so it is not needed\n" {
		t.Errorf("status --if-used with no database: exit %d, %q %q", code, out, errOut)
	}
	db := filepath.Join(home, ".nanoclaw", "store", "nanoclaw.db")
	if err := os.MkdirAll(filepath.Dir(db), 0o700); err != nil {
		t.Fatal(err)
	}
	// A database it cannot read is no reason to build.
	if err := os.WriteFile(db, []byte("not a database"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runProgram(t, env, binary, "image", "status", "--browser", "--if-used")
	if code != 0 || out != "" || !strings.Contains(errOut, "cannot tell whether a group has browser=true") {
		t.Errorf("status --if-used with an unreadable database: exit %d, %q %q", code, out, errOut)
	}
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.PutGroup(context.Background(), store.Group{Folder: "shop", Name: "Shop", Trigger: "@Andy", AddedAt: time.Now(), Config: store.ContainerConfig{Browser: true}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runProgram(t, env, binary, "image", "status", "--browser", "--if-used")
	if want := "nanoclaw image: " + tag + " (podman) is missing: run 'nanoclaw image build --browser'\n"; code != 1 || errOut != want {
		t.Errorf("status --if-used with a browser group: exit %d, stderr %q; want 1, %q", code, errOut, want)
	}
	if code, _, errOut := runProgram(t, env, binary, "image", "status", "--if-used"); code != cli.ExitUsage || !strings.Contains(errOut, "--if-used goes with --browser") {
		t.Errorf("--if-used alone: exit %d, %q", code, errOut)
	}
	code, _, errOut = runProgram(t, env, binary, "image", "build", "--browser", "--if-needed", "--base", testenv.BaseImage)
	if code != 0 || !strings.Contains(errOut, "nanoclaw image build: built "+tag+" in ") {
		t.Fatalf("build --browser: exit %d, stderr:\n%s", code, errOut)
	}
	code, out, errOut = runProgram(t, env, binary, "image", "status", "--browser", "--if-used")
	if code != 0 || out != tag+" (podman) is current: built from this nanoclaw's Dockerfile\n" || errOut != "" {
		t.Errorf("status --browser after the build: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	label, err := exec.Command(bin, "image", "inspect", "--format", `{{index .Config.Labels "org.nanoclaw.variant"}}`, tag).Output()
	if err != nil || strings.TrimSpace(string(label)) != "browser" {
		t.Errorf("variant label %q, %v", label, err)
	}
	code, _, errOut = runProgram(t, env, binary, "image", "status", "--tag", tag)
	if want := "nanoclaw image: " + tag + " (podman) is stale (built as another variant): run 'nanoclaw image build'\n"; code != 1 || errOut != want {
		t.Errorf("the browser image as the agent image: exit %d, stderr %q; want 1, %q", code, errOut, want)
	}
	code, _, errOut = runProgram(t, env, binary, "image", "status", "--browser", "--tag", testenv.AgentImage)
	if want := "nanoclaw image: " + testenv.AgentImage + " (podman) is stale (built as another variant): run 'nanoclaw image build --browser'\n"; code != 1 || errOut != want {
		t.Errorf("the agent image as the browser image: exit %d, stderr %q; want 1, %q", code, errOut, want)
	}
}
