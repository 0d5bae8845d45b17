package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/nanoclaw/nanoclaw/internal/cli"
	"github.com/nanoclaw/nanoclaw/internal/incontainer"
	"github.com/nanoclaw/nanoclaw/internal/incontainer/selftest"
	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

const selftestHelp = `Probe the container's boundary from inside and print one JSON object of
findings on stdout: no network route, no direct connection, not root, no
capabilities, a read-only root, no credential in the environment or in any
readable file, a gateway that refuses private destinations and API calls
outside its allowlist, and every mount point (for the host to judge).
'nanoclaw doctor --sandbox' starts it in a container made as a non-main
group's; it exits 1 when a finding failed.

Options marked test/debug aim the probe elsewhere so that it can be tested
on a host; the host never passes them.`

// maxHostAddrs bounds --host-addr: the host passes its interfaces' addresses.
const maxHostAddrs = 32

func (m *Main) runSelftest(ctx context.Context, args []string) error {
	cfg := selftest.DefaultConfig()
	fs := m.flagSet("selftest", "[options]", selftestHelp)
	fs.Func("host-addr", "an address of the host, which must stay unreachable (repeatable)", func(s string) error {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("%q is not an IP address", s)
		}
		if len(cfg.HostAddrs) == maxHostAddrs {
			return fmt.Errorf("at most %d host addresses", maxHostAddrs)
		}
		cfg.HostAddrs = append(cfg.HostAddrs, a.Unmap())
		return nil
	})
	socket := fs.String("socket", ipc.ContainerSocket, "the gateway socket")
	listen := fs.String("listen", "127.0.0.1:0", "test/debug: the forwarder's loopback address")
	fs.StringVar(&cfg.WalkRoot, "walk-root", cfg.WalkRoot, "test/debug: where the search for credentials starts")
	var roDirs []string
	fs.Func("read-only-dir", "test/debug: a directory that must refuse a new file (repeatable; default / and /usr)", func(s string) error {
		roDirs = append(roDirs, s)
		return nil
	})
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if ap, err := netip.ParseAddrPort(*listen); err != nil || !ap.Addr().IsLoopback() {
		return cli.Usagef("--listen %q: must be a loopback IP and port", *listen)
	}
	if roDirs != nil {
		cfg.ReadOnlyDirs = roDirs
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	// The agent's own way to the gateway: the same forwarder Claude Code's
	// HTTP(S)_PROXY points at.
	fctx, stop := context.WithCancel(context.Background())
	var fwd sync.WaitGroup
	fwd.Go(func() { incontainer.Forward(fctx, ln, *socket, 0, slog.New(slog.DiscardHandler)) }) //nolint:errcheck // ends with fctx
	cfg.Proxy = ln.Addr().String()
	rep, err := selftest.Run(ctx, cfg)
	stop()
	fwd.Wait()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(m.Stdout)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rep); err != nil {
		return err
	}
	if !rep.OK() {
		failed := 0
		for _, f := range rep.Findings {
			if !f.OK {
				failed++
			}
		}
		return errors.New(strconv.Itoa(failed) + " of the findings failed (see the report on stdout)")
	}
	return nil
}
