// Package templates holds the CLAUDE.md files a new group starts with,
// embedded in the binary so an installed nanoclaw needs no other files.
package templates

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

var (
	//go:embed global.md
	global string
	//go:embed main.md
	mainGroup string
	//go:embed group.md
	group string
)

// Kind chooses a template.
type Kind int

// The templates.
const (
	Global Kind = iota // groups/global/CLAUDE.md
	Main               // the main group's CLAUDE.md
	Group              // any other group's CLAUDE.md
)

// Render fills in the assistant's name and trigger.
func Render(k Kind, name, trigger string) string {
	t := map[Kind]string{Global: global, Main: mainGroup, Group: group}[k]
	return strings.NewReplacer("{{NAME}}", name, "{{TRIGGER}}", trigger).Replace(t)
}

// WriteMemory writes dir/CLAUDE.md from the template unless the file
// exists: the user's and the agent's edits are never overwritten.
func WriteMemory(dir string, k Kind, name, trigger string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "CLAUDE.md")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.WriteString(Render(k, name, trigger)); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
