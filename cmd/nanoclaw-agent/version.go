package main

import (
	"context"
	"fmt"
	"runtime"
)

// version is set at build time (-ldflags "-X main.version=…").
var version = "dev"

func (m *Main) runVersion(_ context.Context, args []string) error {
	fs := m.flagSet("version", "", "Print the version and the Go version.")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "nanoclaw-agent %s (%s)\n", version, runtime.Version())
	return nil
}
