package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// SetFileValues writes values into the env-style config file at path,
// creating it (and its directory, 0700) if needed: each key's line is
// replaced where it is, the keys not there yet are appended, and every
// other line is kept as it was. The file is written whole to a temporary
// file, mode 0600, and renamed into place, so a crash leaves the old file
// or the new one. A value that would not read back exactly as given (a
// line break, surrounding spaces or quotes) is refused, as is a file that
// does not parse now.
func SetFileValues(path string, values map[string]string) error {
	for k, v := range values {
		if !envKey.MatchString(k) {
			return fmt.Errorf("invalid setting name %q", k)
		}
		if strings.ContainsAny(v, "\n\r\x00") || strings.TrimSpace(v) != v || unquote(v) != v {
			return fmt.Errorf("the value of %s cannot be written literally (line breaks, surrounding spaces or quotes)", k)
		}
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, err := parseEnvFile(path, old); err != nil {
		return fmt.Errorf("%w (fix the file first)", err)
	}
	var out bytes.Buffer
	done := make(map[string]bool)
	for line := range strings.Lines(string(old)) {
		key, _, ok := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "export "), "=")
		if v, set := values[strings.TrimSpace(key)]; ok && set && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			line = strings.TrimSpace(key) + "=" + v + "\n"
			done[strings.TrimSpace(key)] = true
		}
		out.WriteString(line)
	}
	if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		out.WriteByte('\n')
	}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if !done[k] {
			fmt.Fprintf(&out, "%s=%s\n", k, values[k])
		}
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// R12: a secret goes only into a directory nobody else may write to
	// (who could swap the file or read it before the rename).
	if info, err := os.Stat(dir); err != nil {
		return err
	} else if info.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by other users (mode %04o): run chmod 700 %s first", dir, info.Mode().Perm(), dir)
	}
	tmp, err := os.CreateTemp(dir, ".config-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(out.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
