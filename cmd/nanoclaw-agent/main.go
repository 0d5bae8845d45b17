// Command nanoclaw-agent runs inside each agent container, next to Claude
// Code. It is bind-mounted read-only from the host at every run, so host and
// agent are always the same build. It holds no credential: everything it needs
// from outside goes through the group's gateway socket.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
)

var version = "dev"

const usage = `nanoclaw-agent — the in-container side of nanoclaw.

Usage: nanoclaw-agent <command>

Commands:
  version   print the version
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		io.WriteString(stderr, usage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		io.WriteString(stdout, usage)
		return 0
	case "version":
		fmt.Fprintf(stdout, "nanoclaw-agent %s (%s)\n", version, runtime.Version())
		return 0
	}
	fmt.Fprintf(stderr, "nanoclaw-agent: unknown command %q\n\n%s", args[0], usage)
	return 2
}
