package main

import (
	"maps"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/agentimage"
	"github.com/nanoclaw/nanoclaw/internal/cli"
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
		{[]string{"image", "status", "--help"}, nil, cli.ExitOK, "Usage: nanoclaw image status [--browser] [--tag IMAGE]", ""},
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
	wantArgs := map[string]string{"BASE": "localhost/debian:bookworm-slim", "CLAUDE_CODE_PLATFORM": "linux-x64"}
	if !maps.Equal(o.BuildArgs, wantArgs) {
		t.Errorf("build args %v, want %v", o.BuildArgs, wantArgs)
	}
	wantLabels := map[string]string{
		"org.nanoclaw.dockerfile.sha256": agentimage.DockerfileDigest(),
		"org.nanoclaw.base":              "localhost/debian:bookworm-slim",
		"org.nanoclaw.variant":           "agent",
	}
	if !maps.Equal(o.Labels, wantLabels) {
		t.Errorf("labels %v, want %v", o.Labels, wantLabels)
	}
	// Without --base the Dockerfile's own default applies: no BASE argument.
	// --browser builds the browser stage and says so in its label.
	o = imageBuildOptions("/tmp/ctx", "", "x", "linux-arm64", imageTarget(true))
	if _, ok := o.BuildArgs["BASE"]; ok || o.BuildArgs["CLAUDE_CODE_PLATFORM"] != "linux-arm64" || o.Labels["org.nanoclaw.base"] != "" {
		t.Errorf("without --base: %+v", o)
	}
	if o.Target != "browser" || o.Labels["org.nanoclaw.variant"] != "browser" {
		t.Errorf("browser image: target %q, labels %v", o.Target, o.Labels)
	}
}
