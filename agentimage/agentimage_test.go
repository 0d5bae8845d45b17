package agentimage

import (
	"bytes"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
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
		"ARG BASE=debian:bookworm-slim\n", "FROM ${BASE} AS claude-code\n", "\nFROM ${BASE} AS " + TargetAgent + "\n",
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

// The browser variant: its stages come after the agent's (docker's classic
// builder builds every stage before the target, so `--target agent` must not
// fetch agent-browser), agent-browser is pinned and checked, Chromium comes
// from Debian, and the image runs as the agent user again.
func TestDockerfileBrowserStage(t *testing.T) {
	d := string(Dockerfile())
	agent := strings.Index(d, "\nFROM ${BASE} AS "+TargetAgent+"\n")
	fetch := strings.Index(d, "\nFROM ${BASE} AS agent-browser\n")
	browser := strings.Index(d, "\nFROM "+TargetAgent+" AS "+TargetBrowser+"\n")
	if agent < 0 || fetch < agent || browser < fetch {
		t.Fatalf("stages out of order or missing: agent at %d, agent-browser at %d, browser at %d", agent, fetch, browser)
	}
	if strings.Count(d, "\nFROM ") != 4 {
		t.Errorf("want exactly four stages, got %d", strings.Count(d, "\nFROM "))
	}
	// The hex of npm's integrity sha512-/agCKB5rw1EE…VEf2fg== of agent-browser 0.41.2.
	const sum = "fda802281e6bc351042bc48a5a8e3389dedae643b095c96a00b0b43f773af5bb89bca761ae5fdd26429d7cba8619a88d21b5b345daaa4f43f16559305447f67e"
	stage := d[browser:]
	for _, want := range []string{"ARG AGENT_BROWSER_VERSION=0.41.2\n", "ARG AGENT_BROWSER_SHA512=" + sum + "\n",
		"sha512sum --check --strict", `"package/bin/agent-browser-$CLAUDE_CODE_PLATFORM"`, "install -o root -g root -m 0755"} {
		if !strings.Contains(d[fetch:browser], want) {
			t.Errorf("agent-browser stage lacks %q", want)
		}
	}
	for _, want := range []string{"apt-get install -y --no-install-recommends chromium fonts-liberation;", "rm -rf /var/lib/apt/lists/*",
		"COPY --from=agent-browser /agent-browser /usr/local/bin/agent-browser\n", `"-perm", "/6000"`,
		"ENV AGENT_BROWSER_EXECUTABLE_PATH=/usr/bin/chromium\n", "> /etc/chromium/policies/managed/nanoclaw.json",
		`"DefaultSearchProviderEnabled": false, "NetworkPredictionOptions": 2, "BrowserNetworkTimeQueriesEnabled": false, "ComponentUpdatesEnabled": false, ` +
			`"AutofillAddressEnabled": false, "AutofillCreditCardEnabled": false, "PasswordManagerEnabled": false, ` +
			`"ProxySettings": {"ProxyMode": "fixed_servers", "ProxyServer": "http://127.0.0.1:` + strconv.Itoa(ipc.BrowserProxyPort) + `", "ProxyBypassList": "<-loopback>"}}`} {
		if !strings.Contains(stage, want) {
			t.Errorf("browser stage lacks %q", want)
		}
	}
	// Root during the build only: the last USER is the agent's, and the stage
	// keeps the agent image's working directory and command.
	users := regexp.MustCompile(`(?m)^USER .*$`).FindAllString(stage, -1)
	body, _, _ := strings.Cut(stage, "# The agent stage's labels are inherited")
	if len(users) == 0 || users[len(users)-1] != "USER 1000:1000" || !strings.HasSuffix(body, "WORKDIR /workspace/group\nCMD [\"/usr/local/bin/nanoclaw-agent\", \"run\"]\n") {
		t.Errorf("browser stage ends as %q, with USER lines %q", stage[max(0, len(stage)-120):], users)
	}
}

// The labels image status reads are the Dockerfile's own, each final
// stage's last lines, from the build arguments image build passes: podman
// ignores --label when its cache answers a build whole, so an older label
// would stay (containers/podman#10340).
func TestDockerfileLabels(t *testing.T) {
	d := string(Dockerfile())
	agent := "ARG " + ArgDockerfile + "=\"\"\nARG " + ArgBase + "=\"\"\nRUN [\"true\"]\n" +
		"LABEL " + LabelDockerfile + "=\"${" + ArgDockerfile + "}\" \\\n" +
		"      " + LabelBase + "=\"${" + ArgBase + "}\" \\\n" +
		"      " + LabelVariant + "=\"" + TargetAgent + "\"\n"
	// The browser stage starts FROM the agent stage: its labels are the
	// agent's but for the variant.
	browser := "LABEL " + LabelVariant + "=\"" + TargetBrowser + "\"\n"
	for target, want := range map[string]string{TargetAgent: agent, TargetBrowser: browser} {
		from := strings.Index(d, " AS "+target+"\n")
		if from < 0 {
			t.Fatalf("no stage %s", target)
		}
		stage := d[from:]
		if next := strings.Index(stage, "\nFROM "); next >= 0 {
			stage = stage[:next+1]
		}
		// Without the next stage's heading comments.
		lines := strings.Split(strings.TrimRight(stage, "\n"), "\n")
		for len(lines) > 0 && (lines[len(lines)-1] == "" || strings.HasPrefix(lines[len(lines)-1], "#")) {
			lines = lines[:len(lines)-1]
		}
		stage = strings.Join(lines, "\n") + "\n"
		if !strings.HasSuffix(stage, want) {
			t.Errorf("stage %s does not end with its labels:\n%s", target, stage[max(0, len(stage)-400):])
		}
	}
}
