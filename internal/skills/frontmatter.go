package skills

import (
	"errors"
	"fmt"
	"strings"
)

// frontMatter is what nanoclaw reads of a SKILL.md: its name and
// description. Claude Code reads the rest itself.
type frontMatter struct {
	name        string
	description string
}

// parseFrontMatter reads SKILL.md's front matter literally, with no YAML
// library: the first line "---", then "key: value" lines up to the next
// "---". A value may sit in one pair of matching quotes (taken off, with no
// escapes read) or be ">" or "|" (with "-" or "+") followed by indented
// lines; indented lines after a value continue it. Lines are joined with
// spaces: a description is one line. Keys other than name and
// description, blank lines and comments are skipped.
func parseFrontMatter(data []byte) (frontMatter, error) {
	text := strings.TrimPrefix(string(data), "\uFEFF")
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	if lines[0] != "---" {
		return frontMatter{}, errors.New(`it does not start with a front matter line "---": begin it with "---", "description: …", "---"`)
	}
	var (
		fm      frontMatter
		seen    = map[string]bool{}
		current string   // the key indented lines continue
		parts   []string // the current key's value, line by line
		closed  bool
	)
	finish := func() {
		value := strings.Join(parts, " ")
		switch current {
		case "name":
			fm.name = value
		case "description":
			fm.description = value
		}
		current, parts = "", nil
	}
	for i, line := range lines[1:] {
		if line == "---" {
			closed = true
			break
		}
		trimmed := strings.TrimSpace(line)
		if line != "" && (line[0] == ' ' || line[0] == '\t') {
			if current != "" && trimmed != "" {
				parts = append(parts, trimmed)
			}
			continue
		}
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		finish()
		key, value, ok := strings.Cut(line, ":")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return frontMatter{}, fmt.Errorf("line %d of the front matter is not \"key: value\"", i+2)
		}
		if key != "name" && key != "description" {
			continue
		}
		if seen[key] {
			return frontMatter{}, fmt.Errorf("the front matter has %q twice: keep one", key)
		}
		seen[key] = true
		current = key
		switch value = strings.TrimSpace(value); value {
		case ">", "|", ">-", "|-", ">+", "|+", "":
		default:
			parts = append(parts, unquote(value))
		}
	}
	finish()
	if !closed {
		return frontMatter{}, errors.New(`its front matter has no closing "---" line`)
	}
	fm.name = strings.TrimSpace(fm.name)
	if strings.TrimSpace(fm.description) == "" {
		return frontMatter{}, errors.New(`its front matter has no description: add a line "description: what the skill is for and when to use it"`)
	}
	return fm, nil
}

// unquote takes one pair of matching quotes off v, literally.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}
