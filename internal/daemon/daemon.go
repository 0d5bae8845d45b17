// Package daemon wires the daemon together: it prepares the data home, opens
// the store and runs the parts until the context ends.
package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/agentimage"
	"github.com/nanoclaw/nanoclaw/internal/agent"
	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/local"
	"github.com/nanoclaw/nanoclaw/internal/channel/telegram"
	"github.com/nanoclaw/nanoclaw/internal/channel/whatsapp"
	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/control"
	"github.com/nanoclaw/nanoclaw/internal/gateway"
	"github.com/nanoclaw/nanoclaw/internal/logfile"
	"github.com/nanoclaw/nanoclaw/internal/mounts"
	"github.com/nanoclaw/nanoclaw/internal/router"
	"github.com/nanoclaw/nanoclaw/internal/sandbox"
	"github.com/nanoclaw/nanoclaw/internal/scheduler"
	"github.com/nanoclaw/nanoclaw/internal/status"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/templates"
	"github.com/nanoclaw/nanoclaw/internal/tools"
	"github.com/nanoclaw/nanoclaw/internal/transcribe"
	"github.com/nanoclaw/nanoclaw/internal/version"
)

// Run starts the daemon and blocks until ctx is cancelled. Once the data
// home is locked, log also writes to the daemon's log file (logfile), at
// the level that level sets.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger, level slog.Leveler) error {
	started := time.Now()
	if err := PrepareHome(cfg, log); err != nil {
		return err
	}
	unlock, err := LockHome(cfg)
	if errors.Is(err, ErrHomeInUse) {
		return fmt.Errorf("another nanoclaw is already running with data home %s (stop it first, or set NANOCLAW_HOME)", cfg.Home)
	}
	if err != nil {
		return err
	}
	defer unlock()
	// Opened only now: two daemons must not write one log file.
	log, closeLog, err := logfile.Open(cfg.LogsDir(), log, level)
	if err != nil {
		return err
	}
	defer closeLog()

	st, err := OpenStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	// An idle daemon holds no database connection: each is an instance of
	// SQLite with memory of its own (half a megabyte of the daemon's ~25
	// together), and opening one again costs under a millisecond.
	st.DB().SetConnMaxIdleTime(time.Second)

	if err := ensureMainGroup(ctx, cfg, st); err != nil {
		return err
	}

	chats := router.NewChannels(st, cfg.AssistantName, log)
	chats.Spool(cfg.SpoolDir(), cfg.MediaMaxBytes)
	// R16: a claimed run may wait for its group's turn behind a few runs,
	// each at most the container timeout, before its own.
	engine := scheduler.New(scheduler.Options{Store: st, Logger: log,
		RunLease: max(scheduler.DefaultRunLease, 4*cfg.ContainerTimeout)})
	// The runtime is prepared after start (gate.prepare): probing the CLI
	// and clearing leftovers take longer than the rest of start together.
	gate := &agentGate{ready: make(chan struct{})}
	tl := Tools(cfg, st, chats, gate, engine.Changed, log)
	agentOpts := AgentOptions(cfg, cfg.Home)
	agentOpts.Gateway.APIKey, agentOpts.Gateway.OAuthToken = cfg.APIKey.Reveal(), cfg.OAuthToken.Reveal()
	agentOpts.Gateway.Tools, agentOpts.Gateway.OnDenied = tl, status.NewDenials(st, log).Record
	agentOpts.Store, agentOpts.Logger = st, log
	// The gateway's API proxy enforces budgets; the router skips the due
	// tasks of a group over its budget (OverBudget), and tells the group
	// and the owner when one is reached (OnBudget, once a period: it is
	// called only by runs, which the router starts, so after it exists).
	var rtr *router.Router
	budgets := NewBudgeter(cfg, st, log, func(folder string, hit gateway.BudgetHit) { rtr.BudgetReached(folder, hit) })
	agentOpts.Gateway.Budget = budgets
	// Questions an earlier daemon left open have no connection waiting.
	if err := st.CloseOpenApprovals(ctx); err != nil {
		return err
	}
	approvals := router.NewApprovals(st, chats, cfg.AssistantName, log)
	agentOpts.Gateway.Approver, agentOpts.Gateway.AskTimeout = approvals, cfg.EgressAskTimeout
	rtr = router.New(router.Options{
		Approvals:     approvals,
		Budgets:       budgets,
		Store:         st,
		Agents:        gate,
		AssistantName: cfg.AssistantName,
		Caps:          router.Caps{MaxMessages: cfg.PromptMaxMessages, MaxBytes: cfg.PromptMaxBytes, MaxMessageBytes: cfg.MessageMaxBytes},
		Location:      cfg.Timezone,
		MaxConcurrent: cfg.MaxConcurrentContainers,
		IdleTimeout:   cfg.IdleTimeout,
		Channels:      chats,
		Runs:          engine,
		Media:         gate,
		MediaMaxBytes: cfg.MediaMaxBytes,
		Transcriber: transcribe.New(transcribe.Options{URL: cfg.TranscribeURL, APIKey: cfg.TranscribeAPIKey.Reveal(),
			Model: cfg.TranscribeModel, MaxAudioBytes: cfg.MediaMaxBytes}),
		Logger: log,
	})

	loc := local.New(log, local.WithMediaMax(cfg.MediaMaxBytes), local.WithFiles(local.FilesDir(cfg.Home), cfg.MediaRetention))
	chats.Add(loc)
	loc.Connect(ctx, rtr)
	wa, err := whatsapp.New(ctx, st.DB(), whatsapp.Options{Logger: log, SendLimit: channel.NewSendLimit(cfg.SendPerMinute, cfg.SendBurst)})
	if err != nil {
		return fmt.Errorf("open WhatsApp session: %w", err)
	}
	defer wa.Close()
	chats.Add(wa)
	tg, err := telegram.New(ctx, st, telegram.Options{Logger: log, ServerURL: cfg.TelegramAPIURL.String(),
		SendLimit: channel.NewSendLimit(cfg.SendPerMinute, cfg.SendBurst)})
	if err != nil {
		return fmt.Errorf("open the Telegram session: %w", err)
	}
	defer tg.Close()
	chats.Add(tg)

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { connectWhatsApp(ctx, wa, rtr, st, log) })
	wg.Go(func() { connectTelegram(ctx, tg, rtr, st, log) })
	srv := control.NewServer(control.Options{Local: loc, Logger: log,
		Tools: tl.OwnerCall, // the owner's rights, which no model has (R6)
		Status: func(ctx context.Context, folder string) (*status.Report, error) {
			return status.Collect(ctx, st, folder, time.Now(), live(started, chats, rtr))
		},
		Registered: func(ctx context.Context, jid string) (bool, error) {
			_, ok, err := st.GroupForChat(ctx, jid)
			return ok, err
		}})
	controlErr := make(chan error, 1)
	wg.Go(func() { controlErr <- srv.Serve(ctx, cfg.ControlSocket()) })

	log.Info("nanoclaw running", "home", cfg.Home, "assistant", cfg.AssistantName,
		"database", cfg.DBPath(), "encrypted", st.Encrypted())
	wg.Go(func() { gate.prepare(ctx, cfg, agentOpts, log) })
	wg.Go(func() { sweepMedia(ctx, gate, st, cfg, log) })
	routerErr := make(chan error, 1)
	go func() { routerErr <- rtr.Run(ctx) }()
	wg.Go(func() {
		// Due tasks go into their groups' queues, as messages do.
		if err := engine.Run(ctx, rtr.RunTask); err != nil && ctx.Err() == nil {
			log.Error("scheduler stopped", "err", err)
		}
	})
	select {
	case err = <-controlErr:
		err = fmt.Errorf("control socket: %w", err)
	case err = <-routerErr:
	case <-ctx.Done():
	}
	cancel()
	log.Info("nanoclaw stopping")
	<-routerErr
	stopCtx, stopCancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer stopCancel()
	<-gate.ready
	gate.runner.Close(stopCtx)
	return err
}

// live is what the running daemon tells `status` beyond the store.
func live(started time.Time, chats *router.Channels, rtr *router.Router) *status.Live {
	l := &status.Live{Version: version.Version, Started: started, States: rtr.States()}
	for _, c := range chats.Statuses() {
		ch := status.Channel{Name: c.Name, Connected: c.Account != "", Account: c.Account, LastEvent: c.LastEvent}
		if (c.Name == whatsapp.Name || c.Name == telegram.Name) && !ch.Connected {
			ch.Note = fmt.Sprintf("not connected: pair it with 'nanoclaw pair %s', or see 'nanoclaw logs'", c.Name)
		}
		l.Channels = append(l.Channels, ch)
	}
	l.Queue.Running, l.Queue.Limit, l.Queue.Waiting = rtr.Load()
	return l
}

// Tools are the host's tools on st as cfg sets them up: the daemon's, and
// the CLI's when the daemon is down (files nil: no file is sent).
func Tools(cfg *config.Config, st *store.Store, chats tools.Chats, files tools.Files, tasksChanged func(), log *slog.Logger) *tools.Set {
	return tools.New(tools.Options{Store: st, Chats: chats, AssistantName: cfg.AssistantName, Location: cfg.Timezone,
		Files: files, MediaMaxBytes: cfg.MediaMaxBytes,
		// R9: what the agents may schedule.
		Tasks:     tools.TaskLimits{MaxActive: cfg.TaskMaxActive, MaxActiveMain: cfg.TaskMaxActiveMain, MinInterval: cfg.TaskMinInterval},
		GroupsDir: cfg.GroupsDir(), SessionsDir: cfg.SessionsDir(),
		// R6, R14: mounts are judged when set; the model only narrows.
		Mounts: mounts.Guard{AllowlistPath: cfg.AllowlistPath(), Protected: mounts.OwnDirs(cfg.Home, cfg.ConfigDir, cfg.AgentBinary)},
		Defaults: store.ContainerConfig{TimeoutSeconds: int(cfg.ContainerTimeout / time.Second), MemoryMB: cfg.ContainerMemoryMB,
			CPUs: cfg.ContainerCPUs, PidsLimit: cfg.ContainerPidsLimit},
		TasksChanged: tasksChanged, Logger: log})
}

// agentGate is the agent runner as the router needs it, once the runtime
// is prepared: until then every run waits. R13: a leftover container of a
// killed earlier run must be gone before any group's run opens a socket.
type agentGate struct {
	ready  chan struct{} // closed by prepare, after runner and err are set
	runner *agent.Runner
	err    error // why there is no runtime (runner then fails every run)
}

// prepare prepares the runtime, makes the runner with it and lets the
// waiting runs go. A stop does not cut it short: a clean-up begun is
// finished, so the leftovers are gone even after the shortest run.
func (a *agentGate) prepare(ctx context.Context, cfg *config.Config, opt agent.Options, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), prepareTimeout)
	defer cancel()
	opt.Runtime, a.err = prepareRuntime(ctx, cfg, log)
	a.runner = agent.NewRunner(opt)
	close(a.ready)
}

// prepareTimeout bounds the runtime's preparation (a stuck CLI must not
// hold a stopping daemon for long).
const prepareTimeout = time.Minute

func (a *agentGate) Start(ctx context.Context, g store.Group, opt agent.StartOptions) (router.Container, error) {
	select {
	case <-a.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if a.err != nil {
		return nil, fmt.Errorf("start agent: %w", a.err)
	}
	s, err := a.runner.Start(ctx, g, opt)
	if err != nil {
		return nil, err // not a typed nil in an interface
	}
	return s, nil
}

// SaveMedia keeps an inbound message's media through the runner, once
// there is one (router.MediaKeeper).
func (a *agentGate) SaveMedia(ctx context.Context, folder, name string, fetch func(io.Writer) error) (int64, error) {
	select {
	case <-a.ready:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return a.runner.SaveMedia(ctx, folder, name, fetch)
}

// SpoolFile copies a file an agent sends through the runner (tools.Files).
func (a *agentGate) SpoolFile(ctx context.Context, folder, path string, max int64) (store.OutFile, error) {
	select {
	case <-a.ready:
	case <-ctx.Done():
		return store.OutFile{}, ctx.Err()
	}
	return a.runner.SpoolFile(ctx, folder, path, max)
}

// DropSpool removes a copy SpoolFile took that no message will send.
func (a *agentGate) DropSpool(name string) {
	<-a.ready // SpoolFile waited for it
	a.runner.DropSpool(name)
}

// sweepMedia removes received media older than MEDIA_RETENTION from the
// groups' folders, and spooled copies no unsent message needs, at start and
// then every hour.
func sweepMedia(ctx context.Context, a *agentGate, st *store.Store, cfg *config.Config, log *slog.Logger) {
	select {
	case <-a.ready:
	case <-ctx.Done():
		return
	}
	for {
		if n, err := a.runner.SweepMedia(ctx, cfg.MediaRetention); err != nil {
			log.Warn("remove old media", "err", err)
		} else if n > 0 {
			log.Info("old media removed", "files", n, "older_than", cfg.MediaRetention)
		}
		if n, err := sweepSpool(ctx, st, cfg.SpoolDir(), time.Now().Add(-24*time.Hour)); err != nil {
			log.Warn("remove spooled files", "err", err)
		} else if n > 0 {
			log.Info("spooled files no message needs removed", "files", n)
		}
		select {
		case <-time.After(time.Hour):
		case <-ctx.Done():
			return
		}
	}
}

// sweepSpool removes the spooled copies last changed before cutoff that no
// unsent message names: a copy whose message was sent or given up is
// removed then, so these are what a crash between copy and send left.
func sweepSpool(ctx context.Context, st *store.Store, dir string, cutoff time.Time) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	unsent, err := st.Unsent(ctx)
	if err != nil {
		return 0, err
	}
	needed := map[string]bool{}
	for _, o := range unsent {
		if o.File != nil {
			needed[o.File.Spool] = true
		}
	}
	removed := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || needed[e.Name()] || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err == nil {
			removed++
		}
	}
	return removed, nil
}

// connectWhatsApp connects the paired account once; whatsmeow reconnects by
// itself after that. Not paired is normal (the local channel still works).
func connectWhatsApp(ctx context.Context, wa *whatsapp.Channel, rtr *router.Router, st *store.Store, log *slog.Logger) {
	err := wa.Connect(ctx, rtr)
	switch {
	case errors.Is(err, whatsapp.ErrNotPaired):
		log.Info("WhatsApp is not paired; the local chat works ('nanoclaw chat'); run 'nanoclaw pair whatsapp' to add WhatsApp")
		return
	case err != nil:
		if ctx.Err() == nil {
			log.Error("WhatsApp unavailable", "err", err)
		}
		return
	}
	bindOwnerChat(ctx, st, wa.Self(), "WhatsApp", log)
}

// connectTelegram connects the paired bot; the channel reconnects by
// itself after that. Not paired is normal. The owner's private chat with
// the bot reaches main.
func connectTelegram(ctx context.Context, tg *telegram.Channel, rtr *router.Router, st *store.Store, log *slog.Logger) {
	// Bound before the first poll: the owner's messages sent while
	// nanoclaw was down must find their chat registered.
	if sess, found, err := st.TelegramSession(ctx); err == nil && found {
		bindOwnerChat(ctx, st, fmt.Sprintf("%s%d", store.TelegramChatPrefix, sess.OwnerChat), "Telegram", log)
	}
	err := tg.Connect(ctx, rtr)
	switch {
	case errors.Is(err, telegram.ErrNotPaired):
		log.Debug("Telegram is not paired; 'nanoclaw pair telegram' adds a bot")
		return
	case err != nil && ctx.Err() == nil:
		log.Error("Telegram unavailable", "err", err)
	}
}

// bindOwnerChat binds the owner's own chat on a channel to main, unless it
// is bound already.
func bindOwnerChat(ctx context.Context, st *store.Store, chat, channelName string, log *slog.Logger) {
	main, found, err := st.MainGroup(ctx)
	if err != nil || !found || chat == "" {
		return
	}
	if g, bound, _ := st.GroupForChat(ctx, chat); bound {
		if g.Folder != main.Folder {
			log.Warn("the owner's "+channelName+" chat is bound to another group, not main", "chat", chat, "group", g.Folder)
		}
		return
	}
	if err := st.BindChat(ctx, chat, main.Folder); err != nil {
		log.Error("bind the owner's "+channelName+" chat to main", "chat", chat, "err", err)
		return
	}
	log.Info("the owner's "+channelName+" chat reaches the main group", "chat", chat)
}

// mainFolder and mainChat are the main group made on first start.
const (
	mainFolder = "main"
	mainChat   = "local:main"
)

// ensureMainGroup registers local:main as the main group when there is no
// main group yet, and writes the memory templates that are missing.
func ensureMainGroup(ctx context.Context, cfg *config.Config, st *store.Store) error {
	main, found, err := st.MainGroup(ctx)
	if err != nil {
		return fmt.Errorf("read main group: %w", err)
	}
	if !found {
		main = store.Group{Folder: mainFolder, Name: "Main", Trigger: cfg.Trigger(), RequiresTrigger: false,
			IsMain: true, AddedAt: time.Now()}
		if err := st.PutGroup(ctx, main); err != nil {
			return fmt.Errorf("register the main group: %w", err)
		}
		if err := st.BindChat(ctx, mainChat, mainFolder); err != nil {
			return fmt.Errorf("register the main group: %w", err)
		}
	}
	if err := templates.WriteMemory(cfg.GroupsDir(), "global", templates.Global, cfg.AssistantName, cfg.Trigger()); err != nil {
		return err
	}
	return templates.WriteMemory(cfg.GroupsDir(), main.Folder, templates.Main, cfg.AssistantName, cfg.Trigger())
}

// prepareRuntime finds the container runtime and removes the containers a
// killed earlier run of this host left behind. Without a runtime the daemon
// still runs (messages are stored); agent runs then fail with the error.
func prepareRuntime(ctx context.Context, cfg *config.Config, log *slog.Logger) (*sandbox.Runtime, error) {
	rt, err := sandbox.Detect(ctx, cfg.Runtime)
	if err != nil {
		log.Error("no container runtime: the assistant cannot answer until one works", "err", err)
		return nil, fmt.Errorf("no container runtime: %w", err)
	}
	rt.Instance = Instance(cfg)
	removed, err := rt.RemoveStale(ctx, "nanoclaw-")
	if err != nil {
		// R13: a leftover container must be gone before its group runs again.
		log.Error("leftover containers of an earlier run could not be removed: no agent runs until they are; remove them, then restart nanoclaw", "err", err)
		return nil, fmt.Errorf("leftover containers of an earlier run could not be removed (remove them, then restart nanoclaw): %w", err)
	}
	if len(removed) > 0 {
		log.Info("removed leftover containers of an earlier run", "containers", removed)
	}
	// Their socket directories go too (each run makes its own).
	if entries, err := os.ReadDir(cfg.IPCDir()); err == nil {
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(cfg.IPCDir(), e.Name())); err != nil {
				log.Warn("remove a leftover socket directory", "dir", e.Name(), "err", err)
			}
		}
	}
	if ok, err := rt.ImageExists(ctx, cfg.Image); err == nil && !ok {
		log.Error("agent image missing: run 'nanoclaw image build'", "image", cfg.Image)
	} else if st, err := agentimage.Status(ctx, rt, cfg.Image, agentimage.TargetAgent); err == nil && ok && st != agentimage.Current {
		// Its labels, where the runtime shows them (Apple's container does not).
		log.Warn("the agent image was not built by this nanoclaw: run 'nanoclaw image build' (make run does it)", "image", cfg.Image, "state", string(st))
	}
	if _, err := os.Stat(cfg.AgentBinary); err != nil {
		log.Error("nanoclaw-agent binary missing: run 'make build' or set NANOCLAW_AGENT_BINARY", "path", cfg.AgentBinary)
	}
	log.Info("container runtime ready", "runtime", rt.Kind)
	return rt, nil
}

// Instance names this host's containers: derived from the data home, so a
// restarted host recognises what its earlier run left, and two hosts with
// different data homes never touch each other's containers.
func Instance(cfg *config.Config) string {
	sum := sha256.Sum256([]byte(cfg.Home))
	return hex.EncodeToString(sum[:6])
}

// PrepareHome creates the data home's directories, private to the owner.
// R12: an existing one with looser modes (a data home made by hand, or by
// an older version) is tightened to 0700, saying so; nanoclaw refuses to
// run with a data home it cannot make private, or that another user owns.
// R21: from here on every file the process creates is private too (umask
// 077: SQLite's -wal and -shm files among them), and the store's existing
// files are checked.
func PrepareHome(cfg *config.Config, log *slog.Logger) error {
	syscall.Umask(0o077)
	for _, dir := range cfg.DataDirs() {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
		if err := private(dir, 0o700, log); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(cfg.StoreDir())
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := private(filepath.Join(cfg.StoreDir(), e.Name()), 0o600, log); err != nil {
				return err
			}
		}
	}
	return nil
}

// private makes sure path belongs to this process's user and has no
// permission bits beyond mode.
func private(path string, mode os.FileMode, log *slog.Logger) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, not to this user (uid %d): nanoclaw keeps its data private; use a data home of your own (NANOCLAW_HOME)", path, sys.Uid, os.Geteuid())
	}
	if st.Mode().Perm()&^mode == 0 {
		return nil
	}
	if err := os.Chmod(path, st.Mode().Perm()&mode); err != nil {
		return fmt.Errorf("%s has mode %v and cannot be made private: %w (fix it with chmod %o %s)", path, st.Mode().Perm(), err, mode, path)
	}
	if log != nil {
		log.Warn("tightened the permissions of a data file other users could read", "path", path, "was", st.Mode().Perm().String(), "now", (st.Mode().Perm() & mode).String())
	}
	return nil
}

// ErrHomeInUse reports that another nanoclaw process holds the data home.
var ErrHomeInUse = errors.New("the data home is in use by another nanoclaw process")

// LockHome makes sure only one process uses a data home: two daemons would
// answer every message twice, and pairing beside a running daemon would knock
// its WhatsApp session off. The kernel releases the lock if the process dies.
func LockHome(cfg *config.Config) (func(), error) {
	f, err := os.OpenFile(cfg.LockFile(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrHomeInUse
		}
		return nil, fmt.Errorf("lock %s: %w", cfg.LockFile(), err)
	}
	return func() { f.Close() }, nil
}

// OpenStore opens the database, encrypted when a key file exists (finding 11).
func OpenStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (*store.Store, error) {
	key, err := readKey(cfg, log)
	if err != nil {
		return nil, err
	}
	return store.Open(ctx, cfg.DBPath(), store.Options{Key: key, Logger: log})
}

// readKey loads the database key. No key file at the default place means an
// unencrypted database; a key file named explicitly must exist.
func readKey(cfg *config.Config, log *slog.Logger) ([]byte, error) {
	data, err := os.ReadFile(cfg.DBKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		if cfg.Sources["NANOCLAW_DB_KEY_FILE"] != "default" {
			return nil, fmt.Errorf("NANOCLAW_DB_KEY_FILE %s does not exist", cfg.DBKeyFile)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read database key: %w", err)
	}
	if info, err := os.Stat(cfg.DBKeyFile); err == nil && info.Mode().Perm()&0o077 != 0 {
		log.Warn("database key file is readable by other users", "file", cfg.DBKeyFile, "fix", "chmod 600 "+filepath.Clean(cfg.DBKeyFile))
	}
	key, err := store.ParseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("database key %s: %w", cfg.DBKeyFile, err)
	}
	return key, nil
}
