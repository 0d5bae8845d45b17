package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/nanoclaw/nanoclaw/internal/version"
)

func (m *Main) runVersion(_ context.Context, args []string) error {
	fs := m.flagSet("version", "", "Print nanoclaw's version, the commit it was built from and the Go version.")
	if err := m.parseNoArgs(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "nanoclaw %s (%s, %s)\n", version.Version, version.Revision(), runtime.Version())
	return nil
}
