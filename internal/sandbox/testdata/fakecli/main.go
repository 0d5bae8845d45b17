// Command fakecli stands in for a container CLI in tests of package sandbox.
//
// It appends its arguments, as one JSON array per line, to $NANOCLAW_FAKE_LOG
// (if set). Then it behaves according to $NANOCLAW_FAKE_<NAME>, NAME being the
// upper-cased name it was invoked under (DOCKER, PODMAN, CONTAINER):
//
//	unset or empty  fail like a CLI whose daemon is down (exit 1)
//	"ok"            succeed, printing nothing
//	a path          exec that program (podman) with the arguments
//
// Invoked as "container", it models Apple's container CLI: it accepts only the
// subcommands and flags nanoclaw uses that Apple's CLI documents, fails on
// anything else, and translates to podman only what podman spells differently.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if logPath := os.Getenv("NANOCLAW_FAKE_LOG"); logPath != "" {
		line, _ := json.Marshal(append([]string{name}, args...))
		f, err := os.OpenFile(logPath, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			fail(2, "fake %s: %v", name, err)
		}
		f.Write(append(line, '\n'))
		f.Close()
	}
	mode := os.Getenv("NANOCLAW_FAKE_" + strings.ToUpper(name))
	switch mode {
	case "":
		fail(1, "Cannot connect to the %s daemon (fake: not working)", name)
	case "ok":
		os.Exit(0)
	}
	if name == "container" {
		var err error
		if args, err = translateApple(args); err != nil {
			fail(64, "Error: %v", err) // 64: what Apple's CLI exits with on a usage error
		}
	}
	argv := append([]string{filepath.Base(mode)}, args...)
	err := syscall.Exec(mode, argv, os.Environ())
	fail(2, "fake %s: exec %s: %v", name, mode, err)
}

func fail(code int, format string, a ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(code)
}

// translateApple checks an Apple container CLI command line and returns the
// podman command line that does the same here.
func translateApple(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("no subcommand")
	}
	rest := args[1:]
	switch args[0] {
	case "system":
		if len(rest) == 1 && rest[0] == "status" {
			return []string{"info", "--format", "{{.Host.Arch}}"}, nil
		}
	case "list", "ls":
		out := []string{"ps", "--format", "{{.Names}}"}
		quiet := false
		for _, a := range rest {
			switch a {
			case "--all", "-a":
				out = append(out, "--all")
			case "--quiet", "-q":
				quiet = true
			default:
				return nil, fmt.Errorf("list: unknown option %q", a)
			}
		}
		if !quiet {
			return nil, fmt.Errorf("list: the fake supports only --quiet output")
		}
		return out, nil
	case "delete", "rm":
		if len(rest) < 2 || (rest[0] != "--force" && rest[0] != "-f") {
			return nil, fmt.Errorf("delete: want --force NAME…")
		}
		return append([]string{"rm", "--force", "--time", "0"}, rest[1:]...), nil
	case "stop":
		if len(rest) == 3 && (rest[0] == "--time" || rest[0] == "-t") {
			return append([]string{"stop"}, rest...), nil
		}
	case "image":
		if len(rest) == 2 && rest[0] == "inspect" {
			return []string{"image", "inspect", rest[1]}, nil
		}
	case "build":
		return translateBuild(rest)
	case "run":
		return translateRun(rest)
	}
	return nil, fmt.Errorf("unsupported command %q", strings.Join(args, " "))
}

func translateBuild(rest []string) ([]string, error) {
	out := []string{"build"}
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch a {
		case "--progress":
			i++ // podman 4 has no --progress; plain output is its default
		case "--file", "-f", "--tag", "-t", "--build-arg", "--label", "-l":
			if i+1 >= len(rest) {
				return nil, fmt.Errorf("build: %s needs a value", a)
			}
			out = append(out, a, rest[i+1])
			i++
		default:
			if strings.HasPrefix(a, "-") || i != len(rest)-1 {
				return nil, fmt.Errorf("build: unknown option %q", a)
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// Options of Apple's `container run` (docs/command-reference.md) that
// nanoclaw uses.
var (
	runValueFlags = map[string]bool{"--name": true, "--network": true, "--user": true, "-u": true,
		"--cap-drop": true, "--mount": true, "--memory": true, "-m": true, "--cpus": true, "-c": true,
		"--ulimit": true, "--workdir": true, "-w": true, "--env": true, "-e": true, "--tmpfs": true,
		"--entrypoint": true}
	runBoolFlags = map[string]bool{"--rm": true, "--remove": true, "--init": true, "--read-only": true,
		"--interactive": true, "-i": true}
	mountKeys = map[string]bool{"type": true, "source": true, "src": true, "target": true,
		"destination": true, "dst": true, "readonly": true, "ro": true, "size": true, "mode": true}
)

func translateRun(rest []string) ([]string, error) {
	out := []string{"run"}
	i := 0
	for ; i < len(rest) && strings.HasPrefix(rest[i], "-"); i++ {
		a := rest[i]
		switch {
		case runBoolFlags[a]:
			out = append(out, a)
		case runValueFlags[a]:
			if i+1 >= len(rest) {
				return nil, fmt.Errorf("run: %s needs a value", a)
			}
			v := rest[i+1]
			i++
			if a == "--mount" {
				var err error
				if v, err = translateMount(v); err != nil {
					return nil, err
				}
			}
			out = append(out, a, v)
		default:
			return nil, fmt.Errorf("run: unknown option %q", a)
		}
	}
	if i == len(rest) {
		return nil, fmt.Errorf("run: no image")
	}
	return append(out, rest[i:]...), nil
}

// translateMount checks a --mount value the way Apple's parser does and
// spells tmpfs size and mode the way podman wants them.
func translateMount(v string) (string, error) {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		k, val, hasVal := strings.Cut(p, "=")
		if !mountKeys[k] {
			return "", fmt.Errorf("unknown directive %s when parsing mount %s", k, v)
		}
		if strings.Contains(val, "=") {
			return "", fmt.Errorf("mount %s: a value contains '='", v)
		}
		if (k == "readonly" || k == "ro") && hasVal {
			return "", fmt.Errorf("mount %s: readonly takes no value", v)
		}
		if k == "size" || k == "mode" {
			parts[i] = "tmpfs-" + p
		}
	}
	return strings.Join(parts, ","), nil
}
