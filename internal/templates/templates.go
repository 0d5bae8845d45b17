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

// WriteMemory writes groupsDir/folder/CLAUDE.md from the template unless
// the file exists: the user's and the agent's edits are never overwritten.
// The folder is a container's to write, so it is reached only through
// os.Root from groupsDir (the host's own), and the file is made new, never
// through a link the agent left there (R1).
func WriteMemory(groupsDir, folder string, k Kind, name, trigger string) error {
	if folder == "" || strings.ContainsAny(folder, "/\\") || folder == "." || folder == ".." {
		return fmt.Errorf("write memory: invalid folder %q", folder)
	}
	path := filepath.Join(groupsDir, folder, "CLAUDE.md")
	if err := os.MkdirAll(groupsDir, 0o700); err != nil {
		return err
	}
	parent, err := os.OpenRoot(groupsDir)
	if err != nil {
		return err
	}
	defer parent.Close()
	if err := parent.Mkdir(folder, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if st, err := parent.Lstat(folder); err != nil || !st.IsDir() {
		return fmt.Errorf("write %s: %s is not a directory", path, filepath.Join(groupsDir, folder))
	}
	dir, err := parent.OpenRoot(folder)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer dir.Close()
	f, err := dir.OpenFile("CLAUDE.md", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
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
