package agentimage

import (
	"bytes"
	"os"
	"testing"
)

func TestEmbeddedIsTheFile(t *testing.T) {
	onDisk, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Dockerfile(), onDisk) {
		t.Error("embedded Dockerfile differs from agentimage/Dockerfile")
	}
	if len(DockerfileDigest()) != 64 {
		t.Errorf("digest %q", DockerfileDigest())
	}
}

// What the image must and must not contain, as promised in its comments
// and the security review.
func TestDockerfileRules(t *testing.T) {
	d := string(Dockerfile())
	for _, want := range []string{
		"ARG BASE=debian:bookworm-slim\n", "FROM ${BASE} AS claude-code\n", "\nFROM ${BASE}\n",
		"ARG CLAUDE_CODE_VERSION=2.1.332\n", "--no-install-recommends", "rm -rf /var/lib/apt/lists/*",
		`"--uid", "1000"`, "/home/agent", "USER 1000:1000\n", "WORKDIR /workspace/group\n",
		`CMD ["/usr/local/bin/nanoclaw-agent", "run"]`,
	} {
		if !bytes.Contains([]byte(d), []byte(want)) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// finding 8: no entrypoint script, no env file; finding 1: no credential.
	for _, bad := range []string{"ENTRYPOINT", "env-dir", "xargs", "ANTHROPIC_API_KEY", "OAUTH_TOKEN", "nodejs", "npm install"} {
		if bytes.Contains([]byte(d), []byte(bad)) {
			t.Errorf("Dockerfile contains %q", bad)
		}
	}
	for goarch, want := range map[string]string{"amd64": "linux-x64", "arm64": "linux-arm64"} {
		if got, err := ClaudeCodePlatform(goarch); err != nil || got != want {
			t.Errorf("ClaudeCodePlatform(%s) = %q, %v", goarch, got, err)
		}
	}
	if _, err := ClaudeCodePlatform("riscv64"); err == nil {
		t.Error("riscv64 accepted")
	}
}
