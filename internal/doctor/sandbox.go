package doctor

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/daemon"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/selftest"
	"github.com/nanoclaw/nanoclaw/internal/mounts"
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
// for each that failed. The probe's findings are named "sandbox
// (inside)": they are the container's word. The host's own are named
// "sandbox (host)": what it read from the runtime, counted at the gateway,
// and found (or not) in the mounts' sources and the owner's trees.
//
// It works beside a running daemon: the probe's runner has its own gateway
// (without the credential) and a scratch data home, and its container
// carries an instance label of its own, so neither takes the other's
// containers for leftovers.
func Sandbox(ctx context.Context, cfg *config.Config, log *slog.Logger) []Check {
	ctx, cancel := context.WithTimeout(ctx, selfTestTimeout)
	defer cancel()
	rt, err := sandbox.Detect(ctx, cfg.Runtime)
	if err != nil {
		return []Check{{Name: "sandbox: container runtime", Detail: err.Error(),
			Fix: "install podman or docker ('make run' does it on Debian), or set NANOCLAW_RUNTIME to one that works"}}
	}
	rt.Instance = selfTestInstance(cfg)
	if rt.Kind != sandbox.Apple { // Apple's CLI has no label filter: the prefix alone would select
		// What a killed self-test left behind; only this label's containers.
		if _, err := rt.RemoveStale(ctx, "nanoclaw-"+SelfTestFolder+"-"); err != nil {
			log.Warn("remove a leftover self-test container", "err", err)
		}
	}
	sweepScratch(os.TempDir(), time.Now(), log)
	home, err := os.MkdirTemp("", scratchPrefix)
	if err != nil {
		return []Check{{Name: "sandbox: scratch data home", Detail: err.Error(), Fix: "make the temporary directory ($TMPDIR or /tmp) writable"}}
	}
	defer os.RemoveAll(home)
	trees, err := ownersTrees(cfg)
	if err != nil {
		return []Check{{Name: "sandbox: mount allowlist", Detail: err.Error(),
			Fix: "fix the mount allowlist ('nanoclaw mounts check' says what is wrong), then run the self-test again"}}
	}

	// No credential in the probe's gateway (NewSelfTester would drop one
	// anyway): it must not be able to spend it.
	opt := daemon.AgentOptions(cfg, home)
	opt.Runtime, opt.Logger = rt, log
	tester := agent.NewSelfTester(opt)
	defer tester.Close(context.WithoutCancel(ctx))
	rep, err := tester.Run(ctx, store.Group{Folder: SelfTestFolder, Name: "sandbox self-test", RequiresTrigger: true}, agent.SelfTestScan{
		// Only the host's scan gets the credential's bytes.
		Secrets: [][]byte{[]byte(cfg.APIKey.Reveal()), []byte(cfg.OAuthToken.Reveal())},
		Trees:   trees,
	})
	if err != nil {
		return []Check{{Name: "sandbox: probe container", Detail: err.Error(),
			Fix: "fix what the message names, then run 'nanoclaw doctor' for the rest of the installation"}}
	}
	checks := make([]Check, 0, len(rep.Findings))
	for _, f := range rep.Findings {
		c := Check{Name: "sandbox (inside): " + f.Name, OK: f.OK, Detail: f.Detail}
		if slices.Contains(agent.HostFindings, f.Name) {
			c.Name = "sandbox (host): " + f.Name
		}
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

// ownersTrees are the owner's own trees that containers mount: every
// group's folder and groups/global, every group's Claude state, and each
// root the mount allowlist lets a group mount. The host scans them for the
// credential's bytes; the probe, in its scratch folders, sees none of them.
func ownersTrees(cfg *config.Config) ([]string, error) {
	trees := []string{cfg.GroupsDir(), cfg.SessionsDir()}
	al, err := mounts.LoadAllowlist(cfg.AllowlistPath())
	if err != nil {
		return nil, err
	}
	for _, r := range al.Roots {
		trees = append(trees, cmp.Or(r.Resolved, r.Path)) // unresolved: reported as missing
	}
	return trees, nil
}

// scratchPrefix begins the name of each self-test's scratch data home in
// the temporary directory; os.MkdirTemp adds digits.
const scratchPrefix = "nanoclaw-selftest-"

var scratchName = regexp.MustCompile(`^` + scratchPrefix + `[0-9]+$`)

// staleAfter is the age past which a scratch data home is a killed
// self-test's: a running one takes minutes at most (selfTestTimeout).
const staleAfter = time.Hour

// sweepScratch removes what self-tests killed before their own clean-up
// (SIGKILL) left in dir: only directories, never through a link, named as
// MkdirTemp names ours, owned by this user, and older than staleAfter.
func sweepScratch(dir string, now time.Time, log *slog.Logger) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return
	}
	defer root.Close()
	f, err := root.Open(".")
	if err != nil {
		return
	}
	names, _ := f.Readdirnames(-1)
	f.Close()
	me := uint32(os.Geteuid())
	for _, name := range names {
		if !scratchName.MatchString(name) {
			continue
		}
		st, err := root.Lstat(name)
		if err != nil || !st.IsDir() || now.Sub(st.ModTime()) < staleAfter {
			continue
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); !ok || sys.Uid != me {
			continue
		}
		if err := root.RemoveAll(name); err != nil {
			log.Warn("remove a killed self-test's scratch data home", "dir", filepath.Join(dir, name), "err", err)
			continue
		}
		log.Info("removed a killed self-test's scratch data home", "dir", filepath.Join(dir, name))
	}
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
	selftest.FindingRoute:        "the container has a network: use podman or docker as installed by 'make run' (--network none must leave only lo)",
	selftest.FindingDial:         "the container reached the network directly: check that the runtime honours --network none",
	selftest.FindingUser:         "the container runs as root: do not set a user in the image's place; report this as a bug",
	selftest.FindingCaps:         "the container holds capabilities or may gain privileges: check that the runtime honours --cap-drop ALL and no-new-privileges",
	selftest.FindingReadOnly:     "the container's root is writable: check that the runtime honours --read-only",
	selftest.FindingEnv:          "a credential is in the container's environment: remove it from the image ('nanoclaw image build') and from containers.conf",
	selftest.FindingFiles:        "credential-shaped bytes are readable in the container: remove them from the image or the file named, then rebuild with 'nanoclaw image build'",
	selftest.FindingEgress:       "the gateway let a private destination through: report this as a bug, and set egress=none for your groups meanwhile",
	selftest.FindingAPI:          "the gateway forwarded an API call outside its allowlist: report this as a bug",
	selftest.FindingMountsListed: "the probe could not read /proc/self/mountinfo: check the runtime's /proc",
	agent.FindingMounts:          "the container has mounts nanoclaw did not ask for: check containers.conf or the docker daemon's configuration for default mounts",
	agent.FindingSources:         "the credential's bytes are in a file a container sees (or may be given): delete it there and rotate the key",
	agent.FindingRuntime:         "the runtime did not record the hardening nanoclaw asked for: use podman or docker as installed by 'make run', and check containers.conf or the docker daemon's configuration (on Apple's container this cannot be checked)",
	agent.FindingGateway:         "the gateway did not count the refusals the probe reports: the probe's report is not to be trusted; report this as a bug",
}
