// Package mounts decides which extra host directories a group's container
// may see: it reads the mount allowlist (a JSON file kept outside everything
// mounted) and checks each requested mount against it.
//
// Finding 3: a group's container sees only what the host lists; an extra
// mount is granted only when the allowlist, which no container can see or
// edit, says so, and never when it would expose nanoclaw's own data home or
// config dir.
package mounts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// DefaultBlocked are the path-component patterns no extra mount may contain,
// whatever the allowlist says: the usual homes of keys and credentials.
var DefaultBlocked = []string{
	".ssh", ".gnupg", ".gpg", ".aws", ".azure", ".gcloud", ".kube", ".docker",
	"credentials", ".env", ".netrc", ".npmrc", ".pypirc", "id_rsa", "id_ed25519",
	"private_key", ".secret",
}

// Root is one allowed root of the allowlist.
type Root struct {
	// Path is the root as written in the file.
	Path string `json:"path"`
	// AllowReadWrite lets mounts under this root be read-write when asked.
	AllowReadWrite bool `json:"allowReadWrite"`
	// Description is for people reading the file.
	Description string `json:"description,omitempty"`

	// Resolved is Path with ~ expanded and symlinks resolved; "" when the
	// root does not exist (then it allows nothing, see Problem).
	Resolved string `json:"-"`
	// Problem says why Resolved is empty.
	Problem string `json:"-"`
}

// Allowlist is a loaded mount allowlist. The zero value allows nothing.
type Allowlist struct {
	// File is where it was read from.
	File string
	// Exists is false when there was no file (nothing is allowed).
	Exists bool
	// Roots are the allowed roots.
	Roots []Root
	// BlockedPatterns are the file's own patterns, on top of DefaultBlocked.
	BlockedPatterns []string
	// NonMainReadOnly forces every mount of a non-main group read-only.
	NonMainReadOnly bool
}

type fileFormat struct {
	AllowedRoots    []Root   `json:"allowedRoots"`
	BlockedPatterns []string `json:"blockedPatterns"`
	NonMainReadOnly bool     `json:"nonMainReadOnly"`
}

// LoadAllowlist reads the allowlist at file. No file is not an error: it is
// an allowlist that allows nothing. A malformed file is an error naming it.
// It is meant to be called at every run so edits apply without a restart.
func LoadAllowlist(file string) (*Allowlist, error) {
	a := &Allowlist{File: file}
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return a, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mount allowlist %s: %w", file, err)
	}
	a.Exists = true
	var f fileFormat
	if err := ipc.DecodeStrict(data, &f); err != nil {
		return nil, fmt.Errorf("mount allowlist %s: %w", file, err)
	}
	// encoding/json matches field names case-insensitively; a misspelt
	// "nonMainReadonly" must not pass for the real one.
	if err := exactKeys(data); err != nil {
		return nil, fmt.Errorf("mount allowlist %s: %w", file, err)
	}
	for i, r := range f.AllowedRoots {
		p, err := expand(r.Path)
		if err != nil {
			return nil, fmt.Errorf("mount allowlist %s: allowedRoots[%d]: %w", file, i, err)
		}
		// A root that is missing today allows nothing, but does not make the
		// whole file unusable: the other roots still apply.
		if res, err := filepath.EvalSymlinks(p); err != nil {
			r.Problem = fmt.Sprintf("cannot resolve %s: %v", p, unwrapPath(err))
		} else {
			r.Resolved = res
		}
		a.Roots = append(a.Roots, r)
	}
	for i, p := range f.BlockedPatterns {
		if err := checkPattern(p); err != nil {
			return nil, fmt.Errorf("mount allowlist %s: blockedPatterns[%d] %q: %w", file, i, p, err)
		}
	}
	a.BlockedPatterns, a.NonMainReadOnly = f.BlockedPatterns, f.NonMainReadOnly
	return a, nil
}

// exactKeys checks the file's field names with their exact spelling.
func exactKeys(data []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return err
	}
	for k := range top {
		if k != "allowedRoots" && k != "blockedPatterns" && k != "nonMainReadOnly" {
			return fmt.Errorf("unknown field %q (known: allowedRoots, blockedPatterns, nonMainReadOnly)", k)
		}
	}
	var roots []map[string]json.RawMessage
	if raw, ok := top["allowedRoots"]; ok {
		if err := json.Unmarshal(raw, &roots); err != nil {
			return err
		}
	}
	for i, r := range roots {
		for k := range r {
			if k != "path" && k != "allowReadWrite" && k != "description" {
				return fmt.Errorf("allowedRoots[%d]: unknown field %q (known: path, allowReadWrite, description)", i, k)
			}
		}
	}
	return nil
}

func checkPattern(p string) error {
	switch {
	case p == "":
		return errors.New("empty pattern")
	case strings.ContainsRune(p, '/'):
		return errors.New("a pattern matches one path component; it cannot contain '/'")
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("bad glob: %w", err)
	}
	return nil
}

// Verdict is the decision on one requested mount.
type Verdict struct {
	// Mount is the request as the group's config has it.
	Mount store.Mount
	// Allowed says whether the mount is granted.
	Allowed bool
	// Reason says why it was rejected, or why an allowed mount was made
	// read-only although read-write was asked; "" otherwise.
	Reason string
	// HostPath is the request's host path, expanded and resolved (what is
	// mounted); "" when it could not be resolved.
	HostPath string
	// ContainerPath is where it appears: under ipc.ContainerExtraDir.
	ContainerPath string
	// ReadOnly is how it is mounted.
	ReadOnly bool
}

// Check decides one mount for a group. protected are paths no mount may
// overlap, in either direction (nanoclaw's data home, config dir and the
// directories of its binaries, see OwnDirs: mounting them, or a parent of
// them, would undo finding 3). Overlap is decided by file identity as well
// as by name (R7), so a bind mount, a case-insensitive spelling or any other
// alias of a protected directory is refused like the directory itself.
func (a *Allowlist) Check(m store.Mount, isMain bool, protected ...string) Verdict {
	v := Verdict{Mount: m}
	reject := func(format string, args ...any) Verdict {
		v.Allowed, v.ReadOnly = false, true
		v.Reason = fmt.Sprintf(format, args...)
		return v
	}
	// The store's rule for container paths, so a stored path is one a run
	// accepts (R14).
	if err := store.ValidateContainerPath(m.ContainerPath); err != nil {
		return reject("%v", err)
	}
	v.ContainerPath = ipc.ContainerExtraDir + "/" + m.ContainerPath

	if err := store.ValidateHostPath(m.HostPath); err != nil {
		return reject("%v", err)
	}
	hp, err := expand(m.HostPath)
	if err != nil {
		return reject("host_path: %v", err)
	}
	// Blocked components are looked for in the path as written too, so a
	// link named .ssh is refused even when it points somewhere harmless.
	if pat, comp, ok := a.blocked(hp); ok {
		return reject("host path %s: component %q matches blocked pattern %q", hp, comp, pat)
	}
	res, err := filepath.EvalSymlinks(hp)
	if err != nil {
		return reject("host path %s cannot be resolved: %v", hp, unwrapPath(err))
	}
	v.HostPath = res
	if err := store.ValidateHostPath(res); err != nil {
		return reject("host path %s (resolved from %s): %v", res, hp, err)
	}
	if pat, comp, ok := a.blocked(res); ok {
		return reject("host path %s (resolved from %s): component %q matches blocked pattern %q", res, hp, comp, pat)
	}
	var table []mountEntry
	if len(protected) > 0 {
		table = readMountTable()
	}
	for _, p := range protected {
		if p == "" {
			continue
		}
		pp, err := resolveLoose(p)
		if err != nil {
			return reject("protected path %s: %v", p, err)
		}
		if within(res, pp) || within(pp, res) {
			return reject("host path %s overlaps nanoclaw's own %s", res, pp)
		}
		if why := sameTree(res, pp, table); why != "" {
			return reject("host path %s overlaps nanoclaw's own %s: %s", res, pp, why)
		}
	}
	if !a.Exists {
		return reject("no mount allowlist at %s, so no extra mounts are allowed", a.File)
	}
	// The most permissive matching root wins, as the file means "anything
	// under any of these".
	var root *Root
	for i, r := range a.Roots {
		if r.Resolved != "" && within(res, r.Resolved) && (root == nil || r.AllowReadWrite && !root.AllowReadWrite) {
			root = &a.Roots[i]
		}
	}
	if root == nil {
		return reject("host path %s is not under any allowed root", res)
	}
	v.Allowed, v.ReadOnly = true, true
	switch {
	case m.ReadOnly:
	case !root.AllowReadWrite:
		v.Reason = fmt.Sprintf("read-write asked, but root %s allows only read-only", root.Path)
	case !isMain && a.NonMainReadOnly:
		v.Reason = "read-write asked, but nonMainReadOnly forces non-main groups read-only"
	default:
		v.ReadOnly = false
	}
	return v
}

// Guard judges extra mounts as a run would: with the allowlist as the file
// is now and nanoclaw's own directories protected. A setting is judged
// with it when it is made (R14: refused whole, nothing stored); each run
// judges it again, as the allowlist may have changed since.
type Guard struct {
	// AllowlistPath is the allowlist file; "" or no file allows nothing.
	AllowlistPath string
	// Protected are the paths no mount may overlap (see OwnDirs).
	Protected []string
}

// CheckAll judges each of a group's mounts. The error names the first
// refused mount and the verdict's reason, or says why the allowlist could
// not be read; the verdicts say how the others would be mounted.
func (g Guard) CheckAll(ms []store.Mount, isMain bool) ([]Verdict, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	if g.AllowlistPath == "" {
		return nil, errors.New("no mount allowlist is configured, so no extra mounts are allowed")
	}
	al, err := LoadAllowlist(g.AllowlistPath)
	if err != nil {
		return nil, fmt.Errorf("%w: fix it, then check it with 'nanoclaw mounts check'", err)
	}
	var out []Verdict
	for i, m := range ms {
		v := al.Check(m, isMain, g.Protected...)
		if !v.Allowed {
			return nil, fmt.Errorf("mount %d (%s -> %s) refused: %s", i+1, m.HostPath, m.ContainerPath, v.Reason)
		}
		out = append(out, v)
	}
	return out, nil
}

// blocked reports the first component of p matching a blocked pattern. A
// plain pattern matches any component containing it, case-insensitively
// (".env" also blocks ".env.local", "id_rsa" also "id_rsa.pub"); a pattern
// with glob characters must match a whole component.
func (a *Allowlist) blocked(p string) (pattern, component string, ok bool) {
	pats := a.Blocked()
	for _, comp := range strings.Split(p, "/") {
		if comp == "" {
			continue
		}
		lc := strings.ToLower(comp)
		for _, pat := range pats {
			if strings.ContainsAny(pat, "*?[") {
				if m, _ := path.Match(pat, comp); m {
					return pat, comp, true
				}
				continue
			}
			if strings.Contains(lc, strings.ToLower(pat)) {
				return pat, comp, true
			}
		}
	}
	return "", "", false
}

// Blocked lists every pattern in force: the defaults, then the file's.
func (a *Allowlist) Blocked() []string {
	return slices.Concat(DefaultBlocked, a.BlockedPatterns)
}

// Describe is one line for people: the verdict, what is mounted where, and
// why.
func Describe(v Verdict) string {
	req := fmt.Sprintf("%s -> %s", v.Mount.HostPath, v.Mount.ContainerPath)
	if !v.Allowed {
		return fmt.Sprintf("rejected   %s: %s", req, v.Reason)
	}
	mode := "read-write"
	if v.ReadOnly {
		mode = "read-only "
	}
	s := fmt.Sprintf("allowed %s %s -> %s", mode, v.HostPath, v.ContainerPath)
	if v.Reason != "" {
		s += " (" + v.Reason + ")"
	}
	return s
}

// expand turns "~" and "~/..." into the host user's home and requires an
// absolute result.
func expand(p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("path %q contains a NUL byte", p)
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("expand %q: %w", p, err)
		}
		p = filepath.Join(home, p[1:])
	} else if strings.HasPrefix(p, "~") {
		return "", fmt.Errorf("path %q: only ~ and ~/ are expanded, not ~user", p)
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("path %q is not absolute (or ~/...)", p)
	}
	return filepath.Clean(p), nil
}

// resolveLoose resolves symlinks in p as far as it exists; a path that does
// not exist yet is compared as written (it cannot be a link anyway).
func resolveLoose(p string) (string, error) {
	p, err := expand(p)
	if err != nil {
		return "", err
	}
	if res, err := filepath.EvalSymlinks(p); err == nil {
		return res, nil
	}
	dir, base := filepath.Split(p)
	if dir == p || dir == "" {
		return p, nil
	}
	d, err := resolveLoose(filepath.Clean(dir))
	if err != nil {
		return "", err
	}
	return filepath.Join(d, base), nil
}

// within reports whether p is dir or inside it.
func within(p, dir string) bool {
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// unwrapPath drops the *PathError wrapper whose path the caller already says.
func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}
