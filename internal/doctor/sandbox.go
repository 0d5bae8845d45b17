package doctor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/egress"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/selftest"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// SelfTestFolder is the throwaway group the sandbox self-test runs as. It
// is registered nowhere: its directories live in a scratch data home that
// is removed afterwards, and its container id is not taken from the store.
const SelfTestFolder = "selftest"

// selfTestTimeout bounds the whole self-test; the probe itself takes a few
// seconds (most of it the search for credentials).
const selfTestTimeout = 2 * time.Minute

// Sandbox proves the boundary on this machine: it starts a container as a
// non-main group's agent would get it — the same runner, spec, user,
// mounts, limits, gateway socket and egress policy as the daemon's — runs
// the boundary probe in it, and returns one Check per finding, with a fix
// for each that failed.
//
// It works beside a running daemon: the probe's runner has its own gateway
// and a scratch data home, and its container carries an instance label of
// its own, so neither takes the other's containers for leftovers.
func Sandbox(ctx context.Context, cfg *config.Config, log *slog.Logger) []Check {
	ctx, cancel := context.WithTimeout(ctx, selfTestTimeout)
	defer cancel()
	rt, err := sandbox.Detect(ctx, cfg.Runtime)
	if err != nil {
		return []Check{{Name: "sandbox: container runtime", Detail: err.Error(),
			Fix: "install podman or docker (`make run` does it on Debian), or set NANOCLAW_RUNTIME to one that works"}}
	}
	rt.Instance = selfTestInstance(cfg)
	if rt.Kind != sandbox.Apple { // Apple's CLI has no label filter: the prefix alone would select
		// What a killed self-test left behind; only this label's containers.
		if _, err := rt.RemoveStale(ctx, "nanoclaw-"+SelfTestFolder+"-"); err != nil {
			log.Warn("remove a leftover self-test container", "err", err)
		}
	}
	home, err := os.MkdirTemp("", "nanoclaw-selftest-")
	if err != nil {
		return []Check{{Name: "sandbox: scratch data home", Detail: err.Error(), Fix: "make the temporary directory ($TMPDIR or /tmp) writable"}}
	}
	defer os.RemoveAll(home)

	runner := agent.NewRunner(agent.Options{
		Runtime:     rt,
		Image:       cfg.Image,
		AgentBinary: cfg.AgentBinary,
		GroupsDir:   filepath.Join(home, "groups"),
		SessionsDir: filepath.Join(home, "sessions"),
		IPCDir:      filepath.Join(home, "ipc"),
		LogsDir:     filepath.Join(home, "logs"),
		Timeout:     cfg.ContainerTimeout,
		IdleTimeout: cfg.IdleTimeout,
		MemoryMB:    cfg.ContainerMemoryMB,
		CPUs:        cfg.ContainerCPUs,
		PidsLimit:   cfg.ContainerPidsLimit,
		// The policy a new non-main group gets (daemon.Run's default).
		DefaultEgress: egress.Policy{Mode: egress.DefaultMode},
		Gateway: gateway.Options{
			Upstream: cfg.UpstreamURL,
			// Given so the host can look for their bytes in what is
			// mounted; the probe's one API call is refused before any
			// credential would be used.
			APIKey:     cfg.APIKey.Reveal(),
			OAuthToken: cfg.OAuthToken.Reveal(),
		},
		Logger: log,
	})
	defer runner.Close(context.WithoutCancel(ctx))
	rep, err := runner.SelfTest(ctx, store.Group{Folder: SelfTestFolder, Name: "sandbox self-test", RequiresTrigger: true})
	if err != nil {
		return []Check{{Name: "sandbox: probe container", Detail: err.Error(),
			Fix: "fix what the message names, then run 'nanoclaw doctor' for the rest of the installation"}}
	}
	checks := make([]Check, 0, len(rep.Findings))
	for _, f := range rep.Findings {
		c := Check{Name: "sandbox: " + f.Name, OK: f.OK, Detail: f.Detail}
		if !f.OK {
			c.Fix = fixes[f.Name]
			if c.Fix == "" {
				c.Fix = "the container's boundary is broken: do not run agents until this passes"
			}
		}
		checks = append(checks, c)
	}
	return checks
}

// selfTestInstance labels the self-test's containers: its own, so the
// daemon's clean-up at start never removes a self-test's container and
// the self-test's never removes the daemon's.
func selfTestInstance(cfg *config.Config) string {
	sum := sha256.Sum256([]byte("selftest\x00" + cfg.Home))
	return "selftest" + hex.EncodeToString(sum[:6])
}

// fixes say, per finding, what to do when it fails: most failures mean
// the runtime does not honour a flag nanoclaw passes.
var fixes = map[string]string{
	selftest.FindingRoute:        "the container has a network: use podman or docker as installed by `make run` (--network none must leave only lo)",
	selftest.FindingDial:         "the container reached the network directly: check that the runtime honours --network none",
	selftest.FindingUser:         "the container runs as root: do not set a user in the image's place; report this as a bug",
	selftest.FindingCaps:         "the container holds capabilities or may gain privileges: check that the runtime honours --cap-drop ALL and no-new-privileges",
	selftest.FindingReadOnly:     "the container's root is writable: check that the runtime honours --read-only",
	selftest.FindingEnv:          "a credential is in the container's environment: remove it from the image (nanoclaw image build) and from containers.conf",
	selftest.FindingFiles:        "credential-shaped bytes are readable in the container: remove them from the image or the file named, then rebuild with 'nanoclaw image build'",
	selftest.FindingEgress:       "the gateway let a private destination through: report this as a bug, and set egress=none for your groups meanwhile",
	selftest.FindingAPI:          "the gateway forwarded an API call outside its allowlist: report this as a bug",
	selftest.FindingMountsListed: "the probe could not read /proc/self/mountinfo: check the runtime's /proc",
	agent.FindingMounts:          "the container has mounts nanoclaw did not ask for: check containers.conf or the docker daemon's configuration for default mounts",
	agent.FindingSources:         "the credential's bytes are in a file the container sees: delete it there and rotate the key",
}
