package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time (-ldflags "-X main.version=…"); otherwise the
// VCS revision Go recorded is shown.
var version = "dev"

func (m *Main) runVersion(_ context.Context, args []string) error {
	fs := m.flagSet("version", "", "Print nanoclaw's version, the commit it was built from and the Go version.")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	fmt.Fprintf(m.Stdout, "nanoclaw %s (%s, %s)\n", version, revision(), runtime.Version())
	return nil
}

func revision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown commit"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+changes"
			}
		}
	}
	if rev == "" {
		return "unknown commit"
	}
	return "commit " + rev[:min(len(rev), 12)] + dirty
}
