package testenv

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Rules a line of Go code or of a script must not match.
var goRules = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`exec\.Command(Context)?\([^)]*"(/bin/|/usr/bin/)?(sh|bash|dash|zsh|ash)"`), "starts a shell"},
	{regexp.MustCompile(`exec\.Command(Context)?\([^)]*"-c"`), "passes a command string (-c)"},
	{regexp.MustCompile(`exec\.Command(Context)?\((ctx, *)?(fmt\.Sprint|strings\.Join|[a-zA-Z_.]+ *\+)`), "builds the command line from a string"},
	{regexp.MustCompile(`(syscall|unix)\.Exec\([^)]*"(/bin/|/usr/bin/)?(sh|bash)"`), "execs a shell"},
	{regexp.MustCompile(`"(sh|bash) -c`), "holds a shell command string"},
}
var scriptRules = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`\b(sh|bash|dash|zsh) +-c\b`), "runs a command string through a shell"},
	{regexp.MustCompile(`(^|[;&|]\s*)eval\s`), "evaluates a string as code"},
	{regexp.MustCompile(`(^|\s)(source|\.)\s+\S*\.?env\b`), "sources an env file"},
}

// Programs are started with an argument vector, never through a shell or a
// string-built command line (findings 6, 7 and 8). This test reads the whole
// tree and fails on any line that does otherwise.
func TestNoShellAnywhere(t *testing.T) {
	self, _ := filepath.Abs("noshell_test.go")
	root := moduleRoot(t)
	checked := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "bin", "node_modules", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if path == self {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		isGo := strings.HasSuffix(path, ".go")
		isScript := strings.HasPrefix(rel, "scripts"+string(filepath.Separator)) || rel == filepath.Join(".ci", "run") ||
			strings.HasSuffix(path, ".sh") || d.Name() == "Dockerfile"
		if !isGo && !isScript {
			return nil
		}
		checked++
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if isGo {
				for _, r := range goRules {
					if r.re.MatchString(line) {
						t.Errorf("%s:%d %s: %s", rel, n, r.what, strings.TrimSpace(line))
					}
				}
				continue
			}
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			for _, r := range scriptRules {
				if r.re.MatchString(line) {
					t.Errorf("%s:%d %s: %s", rel, n, r.what, strings.TrimSpace(line))
				}
			}
		}
		return sc.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 5 {
		t.Fatalf("checked only %d files under %s: the walk is broken", checked, root)
	}
}

// The rules above must catch what they are for, or the test proves nothing.
func TestNoShellRulesCatchShells(t *testing.T) {
	bad := []string{
		`cmd := exec.Command("sh", "-c", "container rm "+names)`,
		`exec.CommandContext(ctx, "/bin/bash", "-c", line)`,
		`exec.Command(fmt.Sprintf("podman stop %s", name))`,
	}
	matches := func(line string) bool {
		for _, r := range goRules {
			if r.re.MatchString(line) {
				return true
			}
		}
		return false
	}
	for _, b := range bad {
		if !matches(b) {
			t.Errorf("rules miss %s", b)
		}
	}
	if matches(`exec.CommandContext(ctx, r.bin, args...)`) {
		t.Error("rules flag an argument-vector call")
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}
