package config

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// envKey is what a setting's name may look like: the portable shell-variable
// alphabet, so a file that works here reads the same everywhere.
var envKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// parseEnvFile reads an env-style file (KEY=VALUE per line) without any shell
// (finding 8): nothing is expanded, executed or unescaped. Blank lines and lines
// whose first non-space character is '#' are comments. The value is everything
// after the first '=', with surrounding spaces trimmed; if it is wrapped whole in
// one pair of matching quotes ("…" or '…'), that pair is removed. Everything else —
// inner quotes, spaces, '#', '=', '$(…)', backslashes — is kept literally.
// A leading "export " is accepted so a file shared with a shell still parses.
//
// name is used only in error messages, which name the file and the line.
func parseEnvFile(name string, data []byte) (map[string]string, error) {
	values := make(map[string]string)
	seen := make(map[string]int)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff") // editors on some systems add a byte-order mark
		}
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.ContainsRune(line, 0) {
			return nil, fmt.Errorf("%s:%d: line contains a NUL byte", name, n)
		}
		trimmed = strings.TrimPrefix(trimmed, "export ")
		key, value, ok := strings.Cut(trimmed, "=")
		if !ok {
			// The line is not echoed: it may be a secret pasted on its own.
			return nil, fmt.Errorf("%s:%d: expected KEY=VALUE (no '=' on this line)", name, n)
		}
		key = strings.TrimSpace(key)
		if !envKey.MatchString(key) {
			return nil, fmt.Errorf("%s:%d: invalid setting name %q (letters, digits and _ only, not starting with a digit)", name, n, sanitize.Clip(key, 20, "…")) // a secret pasted on the wrong line is not echoed whole
		}
		if first, dup := seen[key]; dup {
			return nil, fmt.Errorf("%s:%d: %s is already set on line %d", name, n, key, first)
		}
		seen[key] = n
		values[key] = unquote(strings.TrimSpace(value))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return values, nil
}

// unquote removes one pair of matching quotes wrapping the whole value.
func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}
