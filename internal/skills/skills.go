// Package skills lists and stages the Claude Code skills the owner places
// in groups/global/skills/<name>/ (every group gets them) and
// groups/<folder>/skills/<name>/ (that group only). Containers can write
// both trees (a group's folder by its own agent, groups/global by main's),
// so they are hostile input: they are reached only through os.Root, every
// entry is Lstat'ed, every file is opened without following a link or
// blocking on a FIFO and must be the file Lstat saw, and every read is
// bounded. A skill is text and files: nothing of it is executed or
// interpreted beyond its SKILL.md front matter.
package skills

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// Bounds on what one source (groups/global/skills or groups/<folder>/skills)
// may hold. A container writes these trees, so each bound keeps the host's
// work at every container start small whatever the agent left there.
const (
	// maxSkills is the most skills one source gives a group: far more
	// than Claude Code can usefully list in its system prompt.
	maxSkills = 64
	// maxEntries is the most entries a skills directory may hold before
	// the whole source is refused: directory order is arbitrary, so a
	// prefix would change from read to read.
	maxEntries = 1024
	// maxFiles is the most regular files one skill may hold, SKILL.md
	// included.
	maxFiles = 256
	// maxDirs is the most directories below one skill's directory: empty
	// directories cost a walk too.
	maxDirs = 64
	// maxDepth is the most path components below a skill's directory
	// (SKILL.md is 1, a/b/c.txt is 3).
	maxDepth = 8
	// maxFileBytes is the largest file a skill may hold: skills are
	// instructions, templates and small scripts, not data sets.
	maxFileBytes = 4 << 20
	// maxSourceBytes is the most one source's used skills may hold
	// together: it bounds what is read and copied at each start.
	maxSourceBytes = 16 << 20
	// maxNameBytes is the longest file or directory name, as on most
	// file systems.
	maxNameBytes = 255
	// maxDescription is the longest description kept, in bytes: it is
	// a one-line summary for `groups show`.
	maxDescription = 200
	// maxProblem bounds a Problem line; the paths in it are bounded
	// already, this keeps the line readable.
	maxProblem = 400
)

// Sources, as Skill.From names them.
const (
	FromGlobal = "global"
	FromGroup  = "group"
)

// Skill is one skill as a group gets it.
type Skill struct {
	Name        string // its directory name: [a-z0-9][a-z0-9-]{0,63}
	Description string // SKILL.md's description: cleaned (sanitize), one line, capped at 200 bytes
	From        string // "global" or "group"
	Files       int    // regular files, SKILL.md included
	Bytes       int64
	Overrides   bool   // a group skill that replaces the global one of the same name
	Problem     string // why it is left out ("" when the group gets it): one line an owner can act on
}

// skill is a Skill with what Stage copies: its directories (parents
// first) and files, relative to the skill's directory.
type skill struct {
	Skill
	ok    bool // read whole and valid (a global one replaced by the group's stays ok: main's snapshot of global holds it)
	dirs  []string
	files []file
}

// file is one regular file of a skill.
type file struct {
	rel  string
	info fs.FileInfo // what Lstat saw
	exec bool        // any execute bit: staged 0755
	data []byte      // read only when staging (and for SKILL.md)
}

// List reports the skills a group gets from globalDir/skills and
// groupDir/skills (and the ones left out, with Problem set), sorted by name
// then From; it writes nothing. A missing skills directory is no skills,
// not an error. globalDir and groupDir are host paths the host made
// (groups/global, groups/<folder>); only what is below them is untrusted.
// A skills directory that cannot be used at all is one entry with an
// empty Name and Problem set.
func List(globalDir, groupDir string) ([]Skill, error) {
	all, err := list(globalDir, groupDir, false)
	if err != nil {
		return nil, err
	}
	return public(all), nil
}

// list scans both sources; keep holds every file's bytes for Stage.
func list(globalDir, groupDir string, keep bool) ([]skill, error) {
	global, err := scanSource(globalDir, FromGlobal, keep)
	if err != nil {
		return nil, err
	}
	group, err := scanSource(groupDir, FromGroup, keep)
	if err != nil {
		return nil, err
	}
	mine := map[string]bool{}
	for _, s := range group {
		if s.ok {
			mine[s.Name] = true
		}
	}
	for i := range global {
		if global[i].ok && mine[global[i].Name] {
			global[i].Problem = fmt.Sprintf("replaced by the group's own skill of that name (%s/skills/%s)", label(groupDir), global[i].Name)
		}
	}
	theirs := map[string]bool{}
	for _, s := range global {
		if s.ok {
			theirs[s.Name] = true
		}
	}
	for i := range group {
		group[i].Overrides = group[i].ok && theirs[group[i].Name]
	}
	all := append(global, group...)
	slices.SortStableFunc(all, func(a, b skill) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.From, b.From)
	})
	return all, nil
}

func public(all []skill) []Skill {
	out := make([]Skill, len(all))
	for i, s := range all {
		out[i] = s.Skill
	}
	return out
}

// label is how problems name a source's folder: groups/<folder>, the way
// the owner sees it in the data home.
func label(dir string) string {
	return "groups/" + filepath.Base(dir)
}

// scanSource reads dir/skills. Only the opening of dir itself can fail the
// call: everything below it is the container's, so what is wrong there
// becomes a Problem.
func scanSource(dir, from string, keep bool) ([]skill, error) {
	root, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("skills: %w", err)
	}
	defer root.Close()
	shown := label(dir) + "/skills"
	whole := func(format string, a ...any) []skill {
		return []skill{{Skill: Skill{From: from, Problem: clipProblem(shown + fmt.Sprintf(format, a...))}}}
	}

	lst, err := root.Lstat("skills")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil
	case err != nil:
		return whole(" cannot be read (%s): make it a readable directory", errText(err)), nil
	case lst.Mode()&fs.ModeSymlink != 0:
		return whole(" is a symbolic link: skills must be a real directory; move the link away"), nil
	case !lst.IsDir():
		return whole(" is %s, not a directory: move it away", kind(lst.Mode())), nil
	}
	sroot, err := root.OpenRoot("skills")
	if err != nil {
		return whole(" cannot be opened (%s): make it a readable directory", errText(err)), nil
	}
	defer sroot.Close()
	names, err := readNames(sroot, ".", lst, maxEntries)
	switch {
	case errors.Is(err, errTooMany):
		return whole(" holds more than %d entries: remove what is not a skill", maxEntries), nil
	case err != nil:
		return whole(" cannot be read (%s): make it a readable directory", errText(err)), nil
	}

	var out []skill
	used, bytes, full := 0, int64(0), false
	for _, name := range names {
		s := skill{Skill: Skill{Name: showName(name), From: from}}
		at := shown + "/" + s.Name
		st, err := sroot.Lstat(name)
		switch {
		case err != nil:
			s.Problem = fmt.Sprintf("%s cannot be read (%s)", at, errText(err))
		case st.Mode().IsRegular():
			continue // a README beside the skills: not a skill
		case st.Mode()&fs.ModeSymlink != 0:
			s.Problem = at + " is a symbolic link: skills hold only files and directories"
		case !st.IsDir():
			s.Problem = fmt.Sprintf("%s is %s: skills hold only files and directories", at, kind(st.Mode()))
		case !validSkillName(name):
			s.Problem = at + ": a skill's directory name must be 1 to 64 of a-z, 0-9 and '-', starting with a letter or digit"
		case used >= maxSkills:
			s.Problem = fmt.Sprintf("%s is left out: %s holds more than %d skills (the first %d by name are used)", at, shown, maxSkills, maxSkills)
		case full:
			s.Problem = fullProblem(at, shown)
		default:
			var over bool
			s, over = readSkill(sroot, name, st, at, from, keep, maxSourceBytes-bytes)
			switch {
			case over:
				full = true
				s.Problem = fullProblem(at, shown)
			case s.Problem == "":
				used++
				bytes += s.Bytes
			}
		}
		s.Problem = clipProblem(s.Problem)
		out = append(out, s)
	}
	return out, nil
}

func fullProblem(at, shown string) string {
	return fmt.Sprintf("%s is left out: the skills of %s come to more than %s together (taken by name up to that)", at, shown, mib(maxSourceBytes))
}

// readSkill walks and reads one skill directory of sroot that Lstat saw as
// lst. over reports that its files would take the source past
// maxSourceBytes (room is what is left): it is then not read.
func readSkill(sroot *os.Root, name string, lst fs.FileInfo, at, from string, keep bool, room int64) (s skill, over bool) {
	s = skill{Skill: Skill{Name: name, From: from}}
	kroot, err := sroot.OpenRoot(name)
	if err != nil {
		s.Problem = fmt.Sprintf("%s cannot be opened (%s)", at, errText(err))
		return s, false
	}
	defer kroot.Close()
	w := walker{root: kroot, at: at}
	if s.Problem = w.dir(".", lst, 0); s.Problem == "" {
		s.Problem = w.skillMD()
	}
	s.Files, s.Bytes = len(w.files), w.bytes
	if s.Problem != "" {
		return s, false
	}
	if w.bytes > room {
		return s, true
	}
	if s.Problem = w.read(keep); s.Problem != "" {
		return s, false
	}
	fm, err := parseFrontMatter(w.files[w.md].data)
	switch {
	case err != nil:
		s.Problem = fmt.Sprintf("%s/SKILL.md: %v", at, err)
	case fm.name != "" && fm.name != name:
		s.Problem = fmt.Sprintf("%s/SKILL.md: its name %s is not the directory's name %q: make them equal", at, quote(fm.name), name)
	default:
		s.Description = cleanDescription(fm.description)
		if s.Description == "" {
			s.Problem = fmt.Sprintf("%s/SKILL.md: its description is empty once cleaned: say in words what the skill is for", at)
		}
	}
	if s.Problem != "" {
		return s, false
	}
	if !keep {
		w.files[w.md].data = nil
	}
	s.ok, s.dirs, s.files = true, w.dirs, w.files
	return s, false
}

// walker collects one skill's tree, Lstat by Lstat, before anything of it
// is read, so the bounds hold before a byte is.
type walker struct {
	root  *os.Root // the skill's directory
	at    string   // how problems name it
	dirs  []string
	files []file
	bytes int64
	md    int // index of SKILL.md in files
}

// dir walks rel (depth components below the skill), which Lstat saw as
// lst. It returns the first problem found, in name order.
func (w *walker) dir(rel string, lst fs.FileInfo, depth int) string {
	names, err := readNames(w.root, rel, lst, maxFiles+maxDirs-len(w.files)-len(w.dirs))
	switch {
	case errors.Is(err, errTooMany):
		return fmt.Sprintf("%s holds more than %d files and %d directories: a skill may hold at most that", w.at, maxFiles, maxDirs)
	case err != nil:
		return fmt.Sprintf("%s cannot be read (%s)", w.show(rel), errText(err))
	}
	for _, name := range names {
		p := path.Join(rel, name)
		if !validName(name) {
			return fmt.Sprintf("%s/%s: a name in a skill must be valid UTF-8 of at most %d bytes without control characters", w.show(rel), showName(name), maxNameBytes)
		}
		if depth+1 > maxDepth {
			return fmt.Sprintf("%s is nested more than %d deep below the skill's directory: flatten it", w.show(p), maxDepth)
		}
		st, err := w.root.Lstat(p)
		if err != nil {
			return fmt.Sprintf("%s cannot be read (%s)", w.show(p), errText(err))
		}
		mode := st.Mode()
		switch {
		case mode.IsDir():
			if len(w.dirs) >= maxDirs {
				return fmt.Sprintf("%s holds more than %d directories: a skill may hold at most that", w.at, maxDirs)
			}
			w.dirs = append(w.dirs, p)
			if problem := w.dir(p, st, depth+1); problem != "" {
				return problem
			}
		case mode.IsRegular():
			if n := links(st); n != 1 {
				return fmt.Sprintf("%s has %d hard links: a skill's file must have one (copy it instead of linking)", w.show(p), n)
			}
			if st.Size() > maxFileBytes {
				return fmt.Sprintf("%s is larger than %s, the most a skill's file may be", w.show(p), mib(maxFileBytes))
			}
			if len(w.files) >= maxFiles {
				return fmt.Sprintf("%s holds more than %d files: a skill may hold at most that", w.at, maxFiles)
			}
			if p == "SKILL.md" {
				w.md = len(w.files)
			}
			w.files = append(w.files, file{rel: p, info: st, exec: mode&0o111 != 0})
			w.bytes += st.Size()
		case mode&fs.ModeSymlink != 0:
			return w.show(p) + " is a symbolic link: skills hold only files and directories"
		default:
			return fmt.Sprintf("%s is %s: skills hold only files and directories", w.show(p), kind(mode))
		}
	}
	return ""
}

// skillMD checks that the walk found SKILL.md at the skill's top.
func (w *walker) skillMD() string {
	if len(w.files) > 0 && w.files[w.md].rel == "SKILL.md" {
		return ""
	}
	if slices.Contains(w.dirs, "SKILL.md") {
		return w.at + "/SKILL.md is a directory: it must be a file whose front matter describes the skill"
	}
	return w.at + " has no SKILL.md: a skill needs one, with a description in its front matter"
}

// read reads the files the walk found, each opened without following a
// link and without blocking (a FIFO swapped in after the walk must not
// hang the host), checked to be the very file Lstat saw, with one link,
// and read to at most the size Lstat gave plus one byte. Only SKILL.md is
// kept unless keep.
func (w *walker) read(keep bool) string {
	for i := range w.files {
		f := &w.files[i]
		data, err := readFile(w.root, f.rel, f.info)
		if err != nil {
			return fmt.Sprintf("%s %v", w.show(f.rel), err)
		}
		if keep || i == w.md {
			f.data = data
		}
	}
	return ""
}

var errChanged = errors.New("changed while it was read: try again")

// readFile reads rel of root, which Lstat saw as lst.
func readFile(root *os.Root, rel string, lst fs.FileInfo) ([]byte, error) {
	fd, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		// A link, or another file, put there since the walk: the open
		// refused to follow it, or found nothing.
		if now, lerr := root.Lstat(rel); lerr != nil || !os.SameFile(lst, now) || !now.Mode().IsRegular() {
			return nil, errChanged
		}
		return nil, fmt.Errorf("cannot be read (%s)", errText(err))
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil || !st.Mode().IsRegular() || !os.SameFile(lst, st) || links(st) != 1 {
		return nil, errChanged
	}
	data, err := io.ReadAll(io.LimitReader(fd, lst.Size()+1))
	if err != nil {
		return nil, fmt.Errorf("cannot be read (%s)", errText(err))
	}
	if int64(len(data)) != lst.Size() {
		return nil, errChanged
	}
	return data, nil
}

// show is how problems name rel of the walked skill.
func (w *walker) show(rel string) string {
	if rel == "." {
		return w.at
	}
	return w.at + "/" + rel
}

var errTooMany = errors.New("too many entries")

// readNames lists directory rel of root, which Lstat saw as lst, sorted;
// more than limit entries is errTooMany, found without reading them all.
func readNames(root *os.Root, rel string, lst fs.FileInfo, limit int) ([]string, error) {
	d, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	if st, err := d.Stat(); err != nil || !os.SameFile(lst, st) {
		return nil, errors.New("it changed while it was read")
	}
	var names []string
	for {
		chunk, err := d.Readdirnames(64)
		names = append(names, chunk...)
		if len(names) > limit {
			return nil, errTooMany
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(names)
	return names, nil
}

// validSkillName reports [a-z0-9][a-z0-9-]{0,63}: Claude Code's own rule
// for a skill's name, and safe in every path and line it appears in.
func validSkillName(name string) bool {
	if len(name) == 0 || len(name) > 64 || name[0] == '-' {
		return false
	}
	for _, c := range []byte(name) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// validName reports a file or directory name a skill may hold: valid
// UTF-8, at most maxNameBytes, no control or format character (bidi
// overrides among them: a name must read as the bytes it holds).
func validName(name string) bool {
	if name == "" || len(name) > maxNameBytes || !utf8.ValidString(name) || strings.ContainsRune(name, '/') {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return false
		}
	}
	return true
}

// showName is a name from the container as a problem may print it: as it
// is when valid, quoted (escapes for the unprintable) and clipped when not.
func showName(name string) string {
	if validName(name) {
		return name
	}
	return quote(name)
}

func quote(s string) string {
	return strconv.Quote(sanitize.Truncate(s, 64)) // Quote escapes what is invalid or unprintable
}

// cleanDescription makes a description one line for the owner's terminal
// and Claude Code's listing: escapes and controls out, white space
// collapsed, at most maxDescription bytes.
func cleanDescription(s string) string {
	return sanitize.Clip(strings.Join(strings.Fields(sanitize.Terminal(s)), " "), maxDescription, "…")
}

func clipProblem(s string) string {
	return sanitize.Clip(s, maxProblem, "…")
}

// links is st's hard link count (1 where the system does not say).
func links(st fs.FileInfo) uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Nlink)
	}
	return 1
}

// kind names a non-regular file's type for a problem.
func kind(mode fs.FileMode) string {
	switch {
	case mode&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case mode&fs.ModeSocket != 0:
		return "a socket"
	case mode&fs.ModeDevice != 0:
		return "a device"
	case mode&fs.ModeSymlink != 0:
		return "a symbolic link"
	case mode.IsDir():
		return "a directory"
	case mode.IsRegular():
		return "a file"
	}
	return "not a regular file"
}

// errText is err's reason without the path os adds (the problem names it).
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return sanitize.Clip(err.Error(), 100, "…")
}

func mib(n int64) string {
	return strconv.FormatInt(n>>20, 10) + " MiB"
}
