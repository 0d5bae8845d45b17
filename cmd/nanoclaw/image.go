package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"time"

	"github.com/nanoclaw/nanoclaw/agentimage"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
)

const imageHelp = `Manage the agent container image: Claude Code, git, curl, ripgrep and jq on a
slim Debian base, run by a non-root user. nanoclaw-agent is not part of it: it
is mounted in when a container starts, so host and agent never drift apart.

Subcommands:
  build    build the image (see 'nanoclaw image build --help')`

const imageBuildHelp = `Build the agent image from the Dockerfile built into this nanoclaw binary,
with the container runtime NANOCLAW_RUNTIME selects (auto: podman or docker on
Linux, Apple's container first on macOS). The runtime's build output goes to
stderr. The image gets the labels ` + agentimage.LabelDockerfile + ` (the
Dockerfile's SHA-256) and ` + agentimage.LabelBase + `.

It downloads Debian packages and Claude Code's native program (checked against
a pinned SHA-512) while it builds; the base image must be present or pullable.`

func (m *Main) runImage(ctx context.Context, args []string) error {
	fs := m.flagSet("image", "<subcommand> [options]", imageHelp)
	if err := m.parse(fs, args); err != nil {
		return err
	}
	switch sub := fs.Arg(0); sub {
	case "":
		return usagef("missing subcommand (build)")
	case "build":
		return m.runImageBuild(ctx, fs.Args()[1:])
	default:
		return usagef("unknown subcommand %q (want build)", sub)
	}
}

func (m *Main) runImageBuild(ctx context.Context, args []string) error {
	fs := m.flagSet("image build", "[--base IMAGE] [--tag IMAGE]", imageBuildHelp)
	base := fs.String("base", "", "base image, a Debian bookworm (default: the Dockerfile's debian:bookworm-slim)")
	tag := fs.String("tag", "", "image to build (default: $NANOCLAW_IMAGE, localhost/nanoclaw-agent:latest)")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	for _, f := range []struct{ name, image string }{{"--base", *base}, {"--tag", *tag}} {
		if f.image != "" {
			if err := sandbox.ValidateImage(f.image); err != nil {
				return usagef("%s: %v", f.name, err)
			}
		}
	}
	cfg, err := config.Load(m.Getenv)
	if err != nil {
		return err
	}
	*tag = cmp.Or(*tag, cfg.Image)
	platform, err := agentimage.ClaudeCodePlatform(goruntime.GOARCH)
	if err != nil {
		return err
	}
	rt, err := sandbox.Detect(ctx, cfg.Runtime)
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
	opts := imageBuildOptions(dir, *base, *tag, platform)
	fmt.Fprintf(m.Stderr, "nanoclaw image build: building %s with %s (%s)\n", *tag, rt.Kind, rt.Bin)
	start := time.Now()
	if err := rt.Build(ctx, opts, m.Stderr); err != nil {
		return err
	}
	fmt.Fprintf(m.Stderr, "nanoclaw image build: built %s in %s\n", *tag, time.Since(start).Round(100*time.Millisecond))
	return nil
}

// imageBuildOptions is the build of the agent image from the Dockerfile
// written into dir.
func imageBuildOptions(dir, base, tag, platform string) sandbox.BuildOptions {
	opts := sandbox.BuildOptions{
		ContextDir: dir,
		Dockerfile: filepath.Join(dir, "Dockerfile"),
		Tag:        tag,
		BuildArgs:  map[string]string{"CLAUDE_CODE_PLATFORM": platform},
		Labels:     map[string]string{agentimage.LabelDockerfile: agentimage.DockerfileDigest(), agentimage.LabelBase: base},
	}
	if base != "" {
		opts.BuildArgs["BASE"] = base
	}
	return opts
}
