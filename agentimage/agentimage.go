// Package agentimage holds the agent image's Dockerfile, embedded so that an
// installed nanoclaw binary can build the image without the source tree.
package agentimage

import (
	"crypto/sha256"
	_ "embed" // the Dockerfile
	"encoding/hex"
	"fmt"
)

//go:embed Dockerfile
var dockerfile string

// Labels `nanoclaw image build` puts on the image, so a caller can tell
// whether an image is current (scripts/test-env reads them).
const (
	// LabelDockerfile is the SHA-256 (hex) of the Dockerfile the image was
	// built from; the pinned Claude Code version is part of that file.
	LabelDockerfile = "org.nanoclaw.dockerfile.sha256"
	// LabelBase is the base image given with --base ("" for the default).
	LabelBase = "org.nanoclaw.base"
	// LabelVariant is the Dockerfile's stage the image was built to: Agent
	// or Browser. Both come from one Dockerfile, so its digest alone cannot
	// tell a browser image from a plain one under the same tag.
	LabelVariant = "org.nanoclaw.variant"
)

// The build arguments the Dockerfile's LABEL lines take LabelDockerfile and
// LabelBase from (LabelVariant is each target's own).
const (
	ArgDockerfile = "NANOCLAW_DOCKERFILE_SHA256"
	ArgBase       = "NANOCLAW_BASE"
)

// The Dockerfile's final stages, each an image (`--target`), and the values
// of LabelVariant.
const (
	// TargetAgent is the image every group runs on.
	TargetAgent = "agent"
	// TargetBrowser is TargetAgent plus Chromium and agent-browser, for the
	// groups the owner gives a browser (about 1 GB more).
	TargetBrowser = "browser"
)

// Dockerfile returns agentimage/Dockerfile.
func Dockerfile() []byte { return []byte(dockerfile) }

// DockerfileDigest is the hex SHA-256 of the Dockerfile.
func DockerfileDigest() string {
	sum := sha256.Sum256([]byte(dockerfile))
	return hex.EncodeToString(sum[:])
}

// ClaudeCodePlatform is the Dockerfile's CLAUDE_CODE_PLATFORM for a Go
// architecture: the npm package of Claude Code's native Linux program. The
// image's architecture is the host's (Linux, Docker Desktop and Apple's
// container all run native guests).
func ClaudeCodePlatform(goarch string) (string, error) {
	switch goarch {
	case "amd64":
		return "linux-x64", nil
	case "arm64":
		return "linux-arm64", nil
	default:
		return "", fmt.Errorf("no Linux build of Claude Code for architecture %s (only amd64 and arm64)", goarch)
	}
}
