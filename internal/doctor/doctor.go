package doctor

import (
	"context"
	"database/sql"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/agentimage"
	"github.com/nanoclaw/nanoclaw/internal/channel/whatsapp"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/control"
	"github.com/nanoclaw/nanoclaw/internal/daemon"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// MinFreeBytes is the free space below which the data home's disk fails
// the check: images, run logs and the database all grow there.
const MinFreeBytes = 1 << 30

// Run makes every check of the installation that cfg describes, in the
// order a fix is best made: what a later check needs comes first. It never
// changes anything (the database is opened, never created).
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) []Check {
	var checks []Check
	add := func(c ...Check) { checks = append(checks, c...) }
	add(configFiles(cfg)...)
	add(dataHome(cfg))
	rt, c := ContainerRuntime(ctx, cfg)
	add(c...)
	add(Image(ctx, cfg, rt))
	add(agentBinary(cfg.AgentBinary))
	add(Credential(ctx, cfg))
	dbChecks, browserGroups := database(ctx, cfg, log)
	add(dbChecks...)
	add(BrowserImage(ctx, cfg, rt, browserGroups)...)
	add(running(ctx, cfg))
	add(FreeDisk(cfg.Home))
	return checks
}

// Failed counts the checks that failed.
func Failed(checks []Check) int {
	n := 0
	for _, c := range checks {
		if !c.OK {
			n++
		}
	}
	return n
}

func ok(name, detail string) Check { return Check{Name: name, OK: true, Detail: detail} }

func fail(name, detail, fix string) Check { return Check{Name: name, Detail: detail, Fix: fix} }

// configFiles: the config directory is private, and each secret file in it
// (config, db.key) readable by its owner alone (R12).
func configFiles(cfg *config.Config) []Check {
	const name = "config files"
	var checks []Check
	info, err := os.Stat(cfg.ConfigDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return []Check{ok(name, cfg.ConfigDir+" does not exist yet: every setting has its default")}
	case err != nil:
		return []Check{fail(name, err.Error(), "check the permissions of "+filepath.Dir(cfg.ConfigDir))}
	case info.Mode().Perm()&0o022 != 0:
		checks = append(checks, fail(name, fmt.Sprintf("%s is writable by other users (mode %04o)", cfg.ConfigDir, info.Mode().Perm()),
			"chmod 700 "+cfg.ConfigDir))
	}
	for _, f := range []string{cfg.File, cfg.DBKeyFile} {
		info, err := os.Stat(f)
		if f == "" || errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			checks = append(checks, fail(name, err.Error(), "check the permissions of "+f))
		} else if info.Mode().Perm()&0o077 != 0 {
			checks = append(checks, fail(name, fmt.Sprintf("%s is readable by other users (mode %04o)", f, info.Mode().Perm()), "chmod 600 "+f))
		}
	}
	if len(checks) == 0 {
		checks = append(checks, ok(name, cfg.ConfigDir+" and the files in it are private"))
	}
	return checks
}

// dataHome: the data home exists, is this user's, and private (R12).
func dataHome(cfg *config.Config) Check {
	const name = "data home"
	info, err := os.Stat(cfg.Home)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fail(name, cfg.Home+" does not exist yet", "start nanoclaw once ('nanoclaw run'), or run 'nanoclaw setup'")
	case err != nil:
		return fail(name, err.Error(), "check the permissions of "+filepath.Dir(cfg.Home))
	case info.Mode().Perm()&0o077 != 0:
		return fail(name, fmt.Sprintf("%s is open to other users (mode %04o)", cfg.Home, info.Mode().Perm()), "chmod 700 "+cfg.Home)
	}
	if st, isUnix := info.Sys().(*syscall.Stat_t); isUnix && int(st.Uid) != os.Getuid() {
		return fail(name, fmt.Sprintf("%s belongs to uid %d, not to this user (%d)", cfg.Home, st.Uid, os.Getuid()),
			"run nanoclaw as the user who owns it, or set NANOCLAW_HOME")
	}
	return ok(name, cfg.Home+", private")
}

// ContainerRuntime: a container runtime works and is set up for this host.
func ContainerRuntime(ctx context.Context, cfg *config.Config) (*sandbox.Runtime, []Check) {
	const name = "container runtime"
	rt, err := sandbox.Detect(ctx, cfg.Runtime)
	if err != nil {
		fix := "run 'make run' (Debian as root: it installs podman), or install podman or docker"
		if cfg.Sources["NANOCLAW_RUNTIME"] != "default" {
			fix = fmt.Sprintf("make %s work (see above), or set NANOCLAW_RUNTIME=auto to use whichever works", cfg.Runtime)
		}
		return nil, []Check{fail(name, err.Error(), fix)}
	}
	checks := []Check{ok(name, fmt.Sprintf("%s at %s", rt.Kind, rt.Bin))}
	if rt.Kind != sandbox.Podman {
		return rt, checks
	}
	// Without systemd as init, podman's systemd cgroup manager cannot
	// create a container's cgroup; cgroupfs can.
	if mgr, err := rt.Info(ctx, "{{.Host.CgroupManager}}"); err == nil && mgr == "systemd" && !systemdRuns() {
		checks = append(checks, fail("podman cgroup manager", "systemd, but systemd is not running on this host",
			`set cgroup_manager = "cgroupfs" under [engine] in /etc/containers/containers.conf`))
	}
	// Every agent runs with --init: podman needs catatonit for it.
	if found := firstExisting("/usr/libexec/podman/catatonit", "/usr/bin/catatonit", "/usr/libexec/catatonit/catatonit"); found == "" {
		checks = append(checks, fail("podman init", "no catatonit, which podman's --init runs", "apt-get install catatonit"))
	}
	return rt, checks
}

func systemdRuns() bool { _, err := os.Stat("/run/systemd/system"); return err == nil }

func firstExisting(paths ...string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Image: the agent image exists and was built from this nanoclaw's
// Dockerfile (which pins Claude Code).
func Image(ctx context.Context, cfg *config.Config, rt *sandbox.Runtime) Check {
	const name = "agent image"
	if rt == nil {
		return fail(name, "not checked: no container runtime", "fix the container runtime first")
	}
	st, err := agentimage.Status(ctx, rt, cfg.Image, agentimage.TargetAgent)
	switch {
	case err != nil:
		return fail(name, err.Error(), "check the container runtime")
	case st != agentimage.Current:
		return fail(name, cfg.Image+" "+string(st), "nanoclaw image build")
	}
	return ok(name, cfg.Image+", current")
}

// BrowserImage: the browser image is current when groups run on it
// (browserGroups, their folders). It is optional: with no group that has
// a browser and no such image, there is no line at all.
func BrowserImage(ctx context.Context, cfg *config.Config, rt *sandbox.Runtime, browserGroups []string) []Check {
	const name = "browser image"
	const build = "nanoclaw image build --browser"
	users := ""
	if n := len(browserGroups); n > 0 {
		named := strings.Join(browserGroups[:min(n, 5)], ", ")
		if n > 5 {
			named += fmt.Sprintf(" and %d more", n-5)
		}
		users = "; groups with browser=true: " + named
	}
	if rt == nil {
		if users == "" {
			return nil
		}
		return []Check{fail(name, "not checked: no container runtime"+users, "fix the container runtime first")}
	}
	st, err := agentimage.Status(ctx, rt, cfg.BrowserImage, agentimage.TargetBrowser)
	switch {
	case err != nil:
		return []Check{fail(name, err.Error(), "check the container runtime")}
	case st == agentimage.Missing && users == "":
		return nil
	case st != agentimage.Current && users == "":
		return []Check{fail(name, cfg.BrowserImage+" "+string(st)+"; no group has browser=true",
			build+", or remove the image")}
	case st != agentimage.Current:
		return []Check{fail(name, cfg.BrowserImage+" "+string(st)+users, build)}
	}
	if users == "" {
		users = "; no group has browser=true"
	}
	return []Check{ok(name, cfg.BrowserImage+", current"+users)}
}

// agentBinary: nanoclaw-agent is there and static, so it runs in any image.
func agentBinary(path string) Check {
	const name = "agent binary"
	const fix = "build it ('make build'), or set NANOCLAW_AGENT_BINARY to a static nanoclaw-agent"
	f, err := elf.Open(path)
	if err != nil {
		return fail(name, fmt.Sprintf("%s: %v", path, err), fix)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fail(name, path+" is dynamically linked", fix)
		}
	}
	return ok(name, path+", static")
}

// Credential: there is one, and the upstream takes it.
func Credential(ctx context.Context, cfg *config.Config) Check {
	const name = "credential"
	where := cfg.FilePath()
	if cfg.APIKey == "" && cfg.OAuthToken == "" {
		return fail(name, "no ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN", "run 'nanoclaw setup', or put ANTHROPIC_API_KEY=… in "+where+" (mode 600)")
	}
	err := gateway.CheckCredential(ctx, cfg.UpstreamURL, cfg.APIKey.Reveal(), cfg.OAuthToken.Reveal())
	switch {
	case errors.Is(err, gateway.ErrCredentialRefused):
		return fail(name, err.Error(), "replace the credential in "+where+" (or run 'nanoclaw setup')")
	case err != nil:
		return fail(name, err.Error(), "check the network, or ANTHROPIC_BASE_URL")
	}
	return ok(name, "accepted by "+cfg.UpstreamURL.Redacted())
}

// database: it opens (with its key when encrypted), and WhatsApp's session
// in it. It also returns the folders of the groups with a browser, which
// BrowserImage checks for.
func database(ctx context.Context, cfg *config.Config, log *slog.Logger) (checks []Check, browserGroups []string) {
	const name = "database"
	if _, err := os.Stat(cfg.DBPath()); errors.Is(err, fs.ErrNotExist) {
		return []Check{ok(name, "none yet: the first start creates it")}, nil
	}
	st, err := daemon.OpenStore(ctx, cfg, log)
	if err != nil {
		fix := "check " + cfg.DBPath() + " ('nanoclaw logs' says what the daemon saw)"
		if errors.Is(err, store.ErrWrongKey) {
			fix = "restore db.key (or NANOCLAW_DB_KEY_FILE) from your copy of the key"
		}
		return []Check{fail(name, err.Error(), fix)}, nil
	}
	defer st.Close()
	what := "opens"
	if st.Encrypted() {
		what = "opens with its key (encrypted)"
	}
	checks = []Check{ok(name, cfg.DBPath()+" "+what)}
	browserGroups, err = withBrowser(ctx, st)
	if err != nil {
		checks = append(checks, fail(name, err.Error(), "check "+cfg.DBPath()))
	}
	_, c := whatsappSession(ctx, st.DB())
	return append(checks, c), browserGroups
}

// BrowserGroups returns the folders of the groups with browser=true in the
// database cfg names; none when there is no database yet (it is never
// created here).
func BrowserGroups(ctx context.Context, cfg *config.Config, log *slog.Logger) ([]string, error) {
	if _, err := os.Stat(cfg.DBPath()); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	st, err := daemon.OpenStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return withBrowser(ctx, st)
}

func withBrowser(ctx context.Context, st *store.Store) ([]string, error) {
	groups, err := st.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	var folders []string
	for _, g := range groups {
		if g.Config.Browser {
			folders = append(folders, g.Folder)
		}
	}
	return folders, nil
}

// WhatsApp is WhatsApp's pairing, read from the database (without
// connecting): paired with +…, or not, which is no failure.
func WhatsApp(ctx context.Context, cfg *config.Config, log *slog.Logger) (paired bool, c Check) {
	if _, err := os.Stat(cfg.DBPath()); errors.Is(err, fs.ErrNotExist) {
		return false, ok("WhatsApp", "not paired: no database yet")
	}
	st, err := daemon.OpenStore(ctx, cfg, log)
	if err != nil {
		return false, fail("WhatsApp", err.Error(), "the database does not open: 'nanoclaw doctor' says why")
	}
	defer st.Close()
	return whatsappSession(ctx, st.DB())
}

func whatsappSession(ctx context.Context, db *sql.DB) (paired bool, c Check) {
	acc, paired, err := whatsapp.Paired(ctx, db)
	switch {
	case err != nil:
		return false, fail("WhatsApp", err.Error(), "pair again: 'nanoclaw pair whatsapp --replace'")
	case paired:
		return true, ok("WhatsApp", "paired with "+acc.Phone())
	}
	return false, ok("WhatsApp", "not paired (optional; after a logout too): 'nanoclaw pair whatsapp'")
}

// running: the daemon answers on its control socket.
func running(ctx context.Context, cfg *config.Config) Check {
	const name = "daemon"
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rep, err := control.Dial(cfg.ControlSocket()).Status(ctx, "")
	if err != nil {
		return fail(name, err.Error(), "start it: 'nanoclaw service start', or 'nanoclaw run' in a terminal")
	}
	return ok(name, fmt.Sprintf("running %s, up %s", rep.Version, time.Since(rep.Started).Round(time.Second)))
}

// FreeDisk: the data home's file system has room.
func FreeDisk(home string) Check {
	const name = "free disk"
	dir := home
	for {
		if _, err := os.Stat(dir); err == nil || filepath.Dir(dir) == dir {
			break
		}
		dir = filepath.Dir(dir)
	}
	var fsStat syscall.Statfs_t
	if err := syscall.Statfs(dir, &fsStat); err != nil {
		return fail(name, err.Error(), "check "+dir)
	}
	free := fsStat.Bavail * uint64(fsStat.Bsize)
	detail := fmt.Sprintf("%.1f GiB free on %s", float64(free)/(1<<30), dir)
	if free < MinFreeBytes {
		return fail(name, detail, "free some space (old images: 'podman image prune'; old run logs: logs/ in the data home)")
	}
	return ok(name, detail)
}
