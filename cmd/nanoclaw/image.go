package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"time"

	"github.com/nanoclaw/nanoclaw/agentimage"
	"github.com/nanoclaw/nanoclaw/internal/doctor"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
)

const imageHelp = `Manage the agent container image: Claude Code, git, curl, ripgrep and jq on a
slim Debian base, run by a non-root user. nanoclaw-agent is not part of it: it
is mounted in when a container starts, so host and agent never drift apart.

With --browser, the browser image instead: the same plus Chromium and
agent-browser (about 1 GB more), which groups set to browser=true run on
('nanoclaw groups set F browser=true'); NANOCLAW_BROWSER_IMAGE names it.

Subcommands:
  build    build the image (see 'nanoclaw image build --help')
  status   say whether the image is there and current: built from this
           nanoclaw's Dockerfile (exit 0), or missing or stale (exit 1)`

const imageBuildHelp = `Build the agent image from the Dockerfile built into this nanoclaw binary,
with the container runtime NANOCLAW_RUNTIME selects (auto: podman or docker on
Linux, Apple's container first on macOS). The runtime's build output goes to
stderr. The image gets the labels ` + agentimage.LabelDockerfile + ` (the
Dockerfile's SHA-256), ` + agentimage.LabelBase + ` and ` + agentimage.LabelVariant + `
(` + agentimage.TargetAgent + ` or ` + agentimage.TargetBrowser + `).

It downloads Debian packages and Claude Code's native program (checked against
a pinned SHA-512) while it builds; the base image must be present or pullable.

With --browser it builds the browser image (NANOCLAW_BROWSER_IMAGE unless
--tag): the agent image plus Debian's Chromium and agent-browser (pinned and
checked the same way), about 1 GB more, for the groups set to browser=true.
Groups without a browser keep running on the plain image.

With --if-needed it builds only when the image is missing, was built from
another Dockerfile (its ` + agentimage.LabelDockerfile + ` label differs) or
is the other variant, whatever its base: a second call does nothing.`

const imageStatusHelp = `Say whether the agent image (NANOCLAW_IMAGE, or --tag) is there and was
built from the Dockerfile in this nanoclaw binary (its ` + agentimage.LabelDockerfile + `
label) as the plain agent image (` + agentimage.LabelVariant + `). With --browser, the same
for the browser image (NANOCLAW_BROWSER_IMAGE, or --tag; Chromium and
agent-browser, for groups with browser=true). Current: one line on stdout,
exit 0. Missing or stale: what to run, exit 1. It builds nothing.

With --browser --if-used, a browser image no group uses (no group has
browser=true) is fine too: exit 0, whatever its state ('make run' builds
the browser image exactly when a group needs it and it is missing or stale).
A database it cannot read is said on stderr, and is no reason to build:
exit 0.`

func (m *Main) runImage(ctx context.Context, args []string) error {
	fs := m.flagSet("image", "<subcommand> [options]", imageHelp)
	if err := m.parse(fs, args); err != nil {
		return err
	}
	switch sub := fs.Arg(0); sub {
	case "":
		return usagef("missing subcommand (build or status)")
	case "build":
		return m.runImageBuild(ctx, fs.Args()[1:])
	case "status":
		return m.runImageStatus(ctx, fs.Args()[1:])
	default:
		return usagef("unknown subcommand %q (want build or status)", sub)
	}
}

func (m *Main) runImageBuild(ctx context.Context, args []string) error {
	fs := m.flagSet("image build", "[--browser] [--base IMAGE] [--tag IMAGE] [--if-needed]", imageBuildHelp)
	browser := fs.Bool("browser", false, "build the browser image (Chromium and agent-browser), for groups with browser=true")
	base := fs.String("base", "", "base image, a Debian bookworm (default: the Dockerfile's debian:bookworm-slim)")
	tagFlag := fs.String("tag", "", "image to build (default: $NANOCLAW_IMAGE, localhost/nanoclaw-agent:latest; with --browser $NANOCLAW_BROWSER_IMAGE, localhost/nanoclaw-agent-browser:latest)")
	ifNeeded := fs.Bool("if-needed", false, "build only when the image is missing, was built from another Dockerfile, or is the other variant")
	if err := m.parseNoArgs(fs, args); err != nil {
		return err
	}
	if *base != "" {
		if err := sandbox.ValidateImage(*base); err != nil {
			return usagef("--base: %v", err)
		}
	}
	rt, tag, err := m.imageRuntime(ctx, *tagFlag, *browser)
	if err != nil {
		return err
	}
	target := imageTarget(*browser)
	if *ifNeeded {
		st, err := agentimage.Status(ctx, rt, tag, target)
		if err != nil {
			return err
		}
		if st == agentimage.Current {
			fmt.Fprintf(m.Stderr, "nanoclaw image build: %s (%s) is current: built from this Dockerfile; nothing to do\n", tag, rt.Kind)
			return nil
		}
		fmt.Fprintf(m.Stderr, "nanoclaw image build: %s (%s) %s\n", tag, rt.Kind, st)
	}
	platform, err := agentimage.ClaudeCodePlatform(goruntime.GOARCH)
	if err != nil {
		return err
	}

	// The build context is a fresh directory holding only the Dockerfile:
	// nothing else from this machine goes into the build.
	dir, err := os.MkdirTemp("", "nanoclaw-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), agentimage.Dockerfile(), 0o644); err != nil {
		return err
	}
	opts := imageBuildOptions(dir, *base, tag, platform, target)
	fmt.Fprintf(m.Stderr, "nanoclaw image build: building %s with %s (%s)\n", tag, rt.Kind, rt.Bin)
	start := time.Now()
	if err := rt.Build(ctx, opts, m.Stderr); err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "nanoclaw image build: built %s in %s\n", tag, time.Since(start).Round(100*time.Millisecond))
	return nil
}

func (m *Main) runImageStatus(ctx context.Context, args []string) error {
	fs := m.flagSet("image status", "[--browser [--if-used]] [--tag IMAGE]", imageStatusHelp)
	browser := fs.Bool("browser", false, "look at the browser image (Chromium and agent-browser)")
	ifUsed := fs.Bool("if-used", false, "with --browser: exit 0 when no group has browser=true")
	tag := fs.String("tag", "", "image to look at (default: $NANOCLAW_IMAGE, localhost/nanoclaw-agent:latest; with --browser $NANOCLAW_BROWSER_IMAGE)")
	if err := m.parseNoArgs(fs, args); err != nil {
		return err
	}
	if *ifUsed && !*browser {
		return usagef("--if-used goes with --browser")
	}
	if err := validTag(*tag); err != nil {
		return err
	}
	if *ifUsed {
		// Before the runtime is asked anything: with no browser group this
		// is all (make run asks it at every start).
		cfg, err := m.loadConfig()
		if err != nil {
			return err
		}
		used, err := doctor.BrowserGroups(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			// Not a reason to build a gigabyte: what cannot read the
			// database cannot run a group either, and says so itself.
			fmt.Fprintf(m.Stderr, "nanoclaw image: cannot tell whether a group has browser=true (%v); not judging the browser image\n", err)
			return nil
		}
		if len(used) == 0 {
			fmt.Fprintf(m.Stdout, "%s: no group has browser=true, so it is not needed\n", cmp.Or(*tag, cfg.BrowserImage))
			return nil
		}
	}
	rt, ref, err := m.imageRuntime(ctx, *tag, *browser)
	if err != nil {
		return err
	}
	st, err := agentimage.Status(ctx, rt, ref, imageTarget(*browser))
	if err != nil {
		return err
	}
	if st != agentimage.Current {
		build := "nanoclaw image build"
		if *browser {
			build += " --browser"
		}
		return fmt.Errorf("%s (%s) %s: run '%s'", ref, rt.Kind, st, build)
	}
	fmt.Fprintf(m.Stdout, "%s (%s) is current: built from this nanoclaw's Dockerfile\n", ref, rt.Kind)
	return nil
}

// imageRuntime validates --tag and returns the runtime the daemon would use
// and the image: tag, or NANOCLAW_IMAGE (NANOCLAW_BROWSER_IMAGE for the
// browser image) when tag is empty.
func (m *Main) imageRuntime(ctx context.Context, tag string, browser bool) (*sandbox.Runtime, string, error) {
	if err := validTag(tag); err != nil {
		return nil, "", err
	}
	cfg, err := m.loadConfig()
	if err != nil {
		return nil, "", err
	}
	rt, err := sandbox.Detect(ctx, cfg.Runtime)
	if err != nil {
		return nil, "", err
	}
	if browser {
		return rt, cmp.Or(tag, cfg.BrowserImage), nil
	}
	return rt, cmp.Or(tag, cfg.Image), nil
}

// validTag checks --tag ("" is none).
func validTag(tag string) error {
	if tag == "" {
		return nil
	}
	if err := sandbox.ValidateImage(tag); err != nil {
		return usagef("--tag: %v", err)
	}
	return nil
}

// imageTarget is the Dockerfile's stage to build, which is also the image's
// variant label.
func imageTarget(browser bool) string {
	if browser {
		return agentimage.TargetBrowser
	}
	return agentimage.TargetAgent
}

// imageBuildOptions is the build of the agent image's stage target
// (agentimage.TargetAgent or TargetBrowser) from the Dockerfile written into
// dir.
func imageBuildOptions(dir, base, tag, platform, target string) sandbox.BuildOptions {
	opts := sandbox.BuildOptions{
		ContextDir: dir,
		Dockerfile: filepath.Join(dir, "Dockerfile"),
		Tag:        tag,
		Target:     target,
		// The labels: LABEL lines of the Dockerfile, from these arguments.
		BuildArgs: map[string]string{"CLAUDE_CODE_PLATFORM": platform,
			agentimage.ArgDockerfile: agentimage.DockerfileDigest(), agentimage.ArgBase: base},
	}
	if base != "" {
		opts.BuildArgs["BASE"] = base
	}
	return opts
}
