package main

import (
	"context"
	"fmt"

	"github.com/nanoclaw/nanoclaw/internal/config"
	"github.com/nanoclaw/nanoclaw/internal/doctor"
)

const doctorHelp = `Check the installation and say what to fix: the config files' permissions,
the data home, the container runtime and its settings, the agent image (present
and built from this version), the agent binary, the credential (accepted by the
upstream), the database (and its key), WhatsApp's pairing, the daemon, the
free disk and the background service. One line per check, ✓ or ✗ with the fix; exit 1 when any fails.

With --sandbox, also start a real hardened container as a non-main group gets
it and report, from inside, what it can and cannot reach: the boundary,
checked on this machine.`

func (m *Main) runDoctor(ctx context.Context, args []string) error {
	fs := m.flagSet("doctor", "[--json] [--sandbox]", doctorHelp)
	asJSON := fs.Bool("json", false, "print the checks as JSON")
	withSandbox := fs.Bool("sandbox", false, "also prove the sandbox from inside a real container")
	if err := m.parseNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := m.loadConfig()
	if err != nil {
		return err
	}
	checks := append(doctor.Run(ctx, cfg, m.Logger), m.serviceCheck(ctx, cfg))
	if *withSandbox {
		checks = append(checks, doctor.Sandbox(ctx, cfg, m.Logger)...)
	}
	if *asJSON {
		if err := writeJSON(m.Stdout, checks); err != nil {
			return err
		}
	} else {
		for _, c := range checks {
			m.printCheck(c)
		}
	}
	if n := doctor.Failed(checks); n > 0 {
		return fmt.Errorf("%d of %d checks failed", n, len(checks))
	}
	if !*asJSON {
		fmt.Fprintf(m.Stdout, "all %d checks passed\n", len(checks))
	}
	return nil
}

// serviceCheck: the background service is installed and running, where a
// service manager runs.
func (m *Main) serviceCheck(ctx context.Context, cfg *config.Config) doctor.Check {
	c := doctor.Check{Name: "service"}
	svc, _, _, err := m.newService(cfg)
	if err != nil {
		c.Detail, c.Fix = err.Error(), "see 'nanoclaw service status'"
		return c
	}
	if why := svc.Check(); why != nil {
		c.OK, c.Detail = true, "none: "+why.Error()
		return c
	}
	st, err := svc.Status(ctx)
	switch {
	case err != nil:
		c.Detail, c.Fix = err.Error(), "nanoclaw service install"
	case !st.Running:
		c.Detail, c.Fix = svc.File+" is installed but the service is not running", "nanoclaw service start ('nanoclaw service status' says why it stopped)"
	default:
		c.OK, c.Detail = true, svc.File+", running"
	}
	return c
}

func (m *Main) printCheck(c doctor.Check) {
	if c.OK {
		fmt.Fprintf(m.Stdout, "✓ %s: %s\n", oneLine(c.Name, 80), oneLine(c.Detail, 300))
		return
	}
	fmt.Fprintf(m.Stdout, "✗ %s: %s\n    fix: %s\n", oneLine(c.Name, 80), oneLine(c.Detail, 300), oneLine(c.Fix, 300))
}
