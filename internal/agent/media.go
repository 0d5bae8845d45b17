package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// A group's media on the host's side: what a chat sent, kept in the
// group's folder for its agent (SaveMedia, removed when old by SweepMedia),
// and what the agent sends back, copied out of the folder into the host's
// spool (SpoolFile). The folder is the container's to write, so all of it
// goes through os.Root and never follows a link the agent left (R1).

// SaveMedia writes a chat's media into the group's folder as
// media/NAME (name is the host's choice: store.ValidateMediaPath) and
// returns its size. fetch writes the content; its error comes back wrapped,
// so errors.Is still finds what it wrapped (channel.ErrTooLarge). The file
// is new (never one the agent left under that name), 0600 and the
// container user's; on any error nothing of it is left.
func (r *Runner) SaveMedia(ctx context.Context, folder, name string, fetch func(w io.Writer) error) (int64, error) {
	if err := store.ValidateFolder(folder); err != nil {
		return 0, fmt.Errorf("save media: %w", err) // finding 5
	}
	rel := store.MediaDir + "/" + name
	if err := store.ValidateMediaPath(rel); err != nil {
		return 0, fmt.Errorf("save media: %w", err)
	}
	id, err := r.identity(ctx, folder)
	if err != nil {
		return 0, fmt.Errorf("save media for group %s: %w", folder, err)
	}
	// The folder as a run would find it: the message may come before the
	// group's first run.
	if err := hostDir(r.opt.GroupsDir); err != nil {
		return 0, fmt.Errorf("save media for group %s: %w", folder, err)
	}
	if err := sandboxDir(r.opt.GroupsDir, folder, id, 0o700); err != nil {
		return 0, fmt.Errorf("save media for group %s: %w", folder, err)
	}
	media, err := r.mediaRoot(folder, id, true)
	if err != nil {
		return 0, fmt.Errorf("save media for group %s: %w", folder, err)
	}
	defer media.Close()
	f, err := media.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, fmt.Errorf("save %s of group %s: %w", rel, folder, err)
	}
	n, err := writeMedia(f, id, fetch)
	if err != nil {
		// The entry is in a directory the agent may change; through the
		// root, removing it removes at most an entry of that directory.
		if rerr := media.Remove(name); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			r.log.Warn("remove a partly written media file", "group", folder, "file", rel, "err", rerr)
		}
		return 0, fmt.Errorf("save %s of group %s: %w", rel, folder, err)
	}
	return n, nil
}

// writeMedia lets fetch write into f, makes it durable and hands it to
// the container user id (through the open file: no path to race), and
// closes it.
func writeMedia(f *os.File, id int, fetch func(w io.Writer) error) (int64, error) {
	w := &countingWriter{w: f}
	err := fetch(w)
	if err == nil {
		err = f.Sync()
	}
	if err == nil && id >= 0 {
		err = f.Chown(id, id)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return w.n, err
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// mediaRoot opens the group's media directory as a root. With create it
// makes the directory when missing, and hands it to the container user id
// (unless id < 0) when someone else owns it. A media/ that is a link or
// anything but a directory is refused.
func (r *Runner) mediaRoot(folder string, id int, create bool) (*os.Root, error) {
	group, err := r.groupRoot(folder)
	if err != nil {
		return nil, err
	}
	defer group.Close()
	made := false
	if create {
		err := group.Mkdir(store.MediaDir, 0o700)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		made = err == nil
	}
	st, err := group.Lstat(store.MediaDir)
	if err != nil {
		return nil, err
	}
	where := filepath.Join(r.opt.GroupsDir, folder, store.MediaDir)
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory (%s): move it away", where, st.Mode().Type())
	}
	media, err := group.OpenRoot(store.MediaDir)
	if err != nil {
		return nil, err
	}
	// What was opened is what Lstat saw, not a link put there since.
	if err := adoptDir(media, st, id, made); err != nil {
		media.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return media, nil
}

// adoptDir checks that root's directory is the one seen as seen, and, when
// id >= 0, hands it to id if someone else owns it; a directory just made
// gets mode 0700 whatever the umask.
func adoptDir(root *os.Root, seen fs.FileInfo, id int, made bool) error {
	d, err := root.Open(".")
	if err != nil {
		return err
	}
	defer d.Close()
	st, err := d.Stat()
	if err != nil {
		return err
	}
	if !os.SameFile(seen, st) {
		return errors.New("it changed while it was being opened: try again")
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && id >= 0 && (int(sys.Uid) != id || int(sys.Gid) != id) {
		if err := d.Chown(id, id); err != nil {
			return err
		}
	}
	if made {
		return d.Chmod(0o700)
	}
	return nil
}

// groupRoot opens the group's folder as a root, from GroupsDir, which only
// the host writes.
func (r *Runner) groupRoot(folder string) (*os.Root, error) {
	groups, err := os.OpenRoot(r.opt.GroupsDir)
	if err != nil {
		return nil, err
	}
	defer groups.Close()
	return groups.OpenRoot(folder)
}

// SweepMedia removes the regular files of every group's media/ last
// changed more than olderThan ago (MEDIA_RETENTION), and returns how many
// it removed. Links and directories the agent made there are left alone;
// nothing is followed. A group whose media cannot be read is skipped; the
// error names each.
func (r *Runner) SweepMedia(ctx context.Context, olderThan time.Duration) (int, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("sweep media: retention %s: want a positive duration", olderThan)
	}
	entries, err := os.ReadDir(r.opt.GroupsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sweep media: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	removed, errs := 0, []error(nil)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		folder := e.Name()
		if !e.IsDir() || store.ValidateFolder(folder) != nil {
			continue
		}
		n, err := r.sweepGroupMedia(folder, cutoff)
		removed += n
		if n > 0 {
			r.log.Info("old media removed", "group", folder, "files", n, "older_than", olderThan)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("sweep media of group %s: %w", folder, err))
		}
	}
	return removed, errors.Join(errs...)
}

// sweepBatch is how many names of a media directory are read at once: a
// group may have made millions.
const sweepBatch = 1024

func (r *Runner) sweepGroupMedia(folder string, cutoff time.Time) (int, error) {
	media, err := r.mediaRoot(folder, -1, false)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer media.Close()
	d, err := media.Open(".")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	removed := 0
	for {
		batch, err := d.ReadDir(sweepBatch)
		for _, e := range batch {
			// Lstat through the root, not the entry's Info, which would
			// look the name up by path.
			st, err := media.Lstat(e.Name())
			if err != nil || !st.Mode().IsRegular() || !st.ModTime().Before(cutoff) {
				continue
			}
			if err := media.Remove(e.Name()); err == nil {
				removed++
			}
		}
		if errors.Is(err, io.EOF) || len(batch) == 0 {
			return removed, nil
		}
		if err != nil {
			return removed, err
		}
	}
}

// SpoolFile copies a file of the group's folder that its agent sends
// (send_file) into the host's spool directory, and returns what it is:
// the copy's name, the file's cleaned base name, and its MIME type and
// kind detected from its content. Caption is left empty.
//
// p is the agent's path: under /workspace/group, or relative to it. A path
// elsewhere, with "..", through a link out of the folder, or naming a link,
// a directory or anything but a regular file is refused, as is a file
// larger than max or empty; each error is one line the model can act on.
func (r *Runner) SpoolFile(ctx context.Context, folder, p string, max int64) (store.OutFile, error) {
	if err := store.ValidateFolder(folder); err != nil {
		return store.OutFile{}, fmt.Errorf("send file: %w", err) // finding 5
	}
	if r.opt.SpoolDir == "" {
		return store.OutFile{}, errors.New("send file: this host has no spool directory for files: it cannot send files")
	}
	if max <= 0 {
		return store.OutFile{}, errors.New("send file: this host sends no files (its media limit is 0)")
	}
	rel, err := groupPath(p)
	if err != nil {
		return store.OutFile{}, err
	}
	shown := sanitize.Clip(p, 200, "…")
	group, err := r.groupRoot(folder)
	if err != nil {
		return store.OutFile{}, fmt.Errorf("send file: the group's folder: %w", err)
	}
	defer group.Close()
	f, err := openRegular(group, rel, shown)
	if err != nil {
		return store.OutFile{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return store.OutFile{}, fmt.Errorf("send file %s: %w", shown, err)
	}
	switch {
	case st.Size() == 0:
		return store.OutFile{}, fmt.Errorf("send file %s: the file is empty", shown)
	case st.Size() > max:
		return store.OutFile{}, fmt.Errorf("send file %s: the file is %s and files may be at most %s: make it smaller (compress or split it)", shown, byteSize(st.Size()), byteSize(max))
	}
	if err := ctx.Err(); err != nil {
		return store.OutFile{}, err
	}
	name := fileName(path.Base(rel))
	return r.spool(f, name, max, shown)
}

// groupPath turns the agent's path into one relative to the group's
// folder, refusing what names anything outside it.
func groupPath(p string) (string, error) {
	const dir = ipc.ContainerGroupDir + "/"
	if p == "" || strings.ContainsRune(p, 0) {
		return "", errors.New("send file: the path is empty or holds a NUL byte")
	}
	shown := sanitize.Clip(p, 200, "…")
	rel := p
	if strings.HasPrefix(p, "/") {
		if !strings.HasPrefix(p, dir) {
			return "", fmt.Errorf("send file %s: only files under %s can be sent: copy it there first", shown, dir)
		}
		rel = strings.TrimPrefix(p, dir)
	}
	for el := range strings.SplitSeq(rel, "/") {
		if el == ".." {
			return "", fmt.Errorf("send file %s: the path may not contain '..': give the file's path under %s", shown, dir)
		}
	}
	rel = path.Clean(rel)
	if rel == "." {
		return "", fmt.Errorf("send file %s: that is the group's folder itself: name one file in it", shown)
	}
	return rel, nil
}

// openRegular opens rel of the group's folder for reading if it is a
// regular file. A final link is refused even inside the folder: what it
// leads to is the agent's choice, made after the call. Opening never
// blocks (a FIFO would, without O_NONBLOCK), and the file opened must be
// the one Lstat saw.
func openRegular(group *os.Root, rel, shown string) (*os.File, error) {
	lst, err := group.Lstat(rel)
	if err != nil {
		return nil, openError(shown, err)
	}
	switch mode := lst.Mode(); {
	case mode&fs.ModeSymlink != 0:
		return nil, fmt.Errorf("send file %s: it is a link: send the file itself, not a link", shown)
	case mode.IsDir():
		return nil, fmt.Errorf("send file %s: it is a directory: send one file (make an archive of the directory first)", shown)
	case !mode.IsRegular():
		return nil, fmt.Errorf("send file %s: it is not a regular file (%s): only ordinary files can be sent", shown, mode.Type())
	}
	f, err := group.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, openError(shown, err)
	}
	st, err := f.Stat()
	if err != nil || !os.SameFile(lst, st) || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("send file %s: the file changed while it was being opened: try again", shown)
	}
	return f, nil
}

// openError says why rel could not be reached, in the model's terms.
func openError(shown string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("send file %s: no such file in %s", shown, ipc.ContainerGroupDir)
	// os.Root's refusal of a path that leaves it; its error has no
	// exported value to compare.
	case strings.Contains(err.Error(), "path escapes from parent"):
		return fmt.Errorf("send file %s: the path leads out of %s through a link: send the file itself, not a link", shown, ipc.ContainerGroupDir)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("send file %s: the file cannot be read (permission denied): make it readable", shown)
	}
	return fmt.Errorf("send file %s: %w", shown, err)
}

// spool copies at most max bytes of f into a new file of the spool
// directory, detecting the type from its first bytes. A file that grew
// past max while it was copied is refused.
func (r *Runner) spool(f *os.File, name string, max int64, shown string) (store.OutFile, error) {
	head := make([]byte, sniffLen)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return store.OutFile{}, fmt.Errorf("send file %s: %w", shown, err)
	}
	head = head[:n]
	mime, kind := detectType(head, name)
	if err := hostDir(r.opt.SpoolDir); err != nil {
		return store.OutFile{}, fmt.Errorf("send file: the spool directory: %w", err)
	}
	// Every group's copies wait here until sent: a few files' worth at
	// most, so agents sending in a loop cannot fill the host's disk.
	if held := dirBytes(r.opt.SpoolDir); held+max > spoolFiles*max {
		return store.OutFile{}, fmt.Errorf("send file %s: %s of files wait to be sent already; send it once they are out", shown, byteSize(held))
	}
	var b [12]byte
	rand.Read(b[:])
	spoolName := hex.EncodeToString(b[:]) + mimeExt[strings.TrimSpace(strings.Split(mime, ";")[0])]
	spoolPath := filepath.Join(r.opt.SpoolDir, spoolName)
	out, err := os.OpenFile(spoolPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return store.OutFile{}, fmt.Errorf("send file: the spool directory: %w", err)
	}
	copied, err := io.Copy(out, io.MultiReader(bytes.NewReader(head), io.LimitReader(f, max+1-int64(n))))
	if err == nil && copied > max {
		err = fmt.Errorf("send file %s: the file grew past %s, the most files may be, while it was read", shown, byteSize(max))
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(spoolPath)
		return store.OutFile{}, err
	}
	return store.OutFile{Spool: spoolName, Name: name, MIME: mime, Kind: kind}, nil
}

// spoolFiles is how many files of the largest size the spool holds at
// most, all groups together.
const spoolFiles = 8

// dirBytes is the size of the regular files in dir.
func dirBytes(dir string) int64 {
	entries, _ := os.ReadDir(dir)
	var n int64
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() {
			n += info.Size()
		}
	}
	return n
}

// sniffLen is how much of a file its type is detected from (all
// http.DetectContentType considers).
const sniffLen = 512

// maxFileName bounds a sent file's name, in bytes (store.OutFile's limit).
const maxFileName = 200

// fileName makes the agent's base name fit to be shown to a chat: one line
// without control or bidi characters, no path separator, capped.
func fileName(base string) string {
	name := strings.ReplaceAll(sanitize.Name(base), `\`, "_")
	name = sanitize.Truncate(name, maxFileName)
	if name == "" || name == "." || name == ".." {
		return "file"
	}
	return name
}

// detectType is the MIME type and kind of a file from its first bytes:
// http.DetectContentType, refined for what it cannot tell apart (audio in
// Ogg, MP4 brands, MP3 without a tag, AAC, FLAC, AMR, SVG). name only
// names a document's format that the content shows to be a zip archive or
// plain text (an office file, CSV): it never makes a file an image, audio
// or video.
func detectType(head []byte, name string) (mime, kind string) {
	mime = refineType(head, http.DetectContentType(head))
	base := strings.TrimSpace(strings.Split(mime, ";")[0])
	ext := strings.ToLower(path.Ext(name))
	switch {
	case base == "application/zip" && zipFormats[ext] != "":
		mime = zipFormats[ext]
	case base == "text/plain" && textFormats[ext] != "":
		mime = textFormats[ext]
	}
	switch {
	case base == "image/svg+xml": // a script, not a picture: a document
		return mime, "document"
	case strings.HasPrefix(base, "image/"):
		return mime, "image"
	case strings.HasPrefix(base, "audio/"):
		return mime, "audio"
	case strings.HasPrefix(base, "video/"):
		return mime, "video"
	}
	return mime, "document"
}

// refineType corrects or completes what http.DetectContentType said of
// head.
func refineType(head []byte, detected string) string {
	at := func(off int, s string) bool { return len(head) >= off+len(s) && string(head[off:off+len(s)]) == s }
	switch {
	case at(0, "OggS"):
		switch {
		case at(28, "OpusHead"):
			return "audio/ogg; codecs=opus" // what WhatsApp wants of a voice note
		case at(28, "\x80theora"):
			return "video/ogg"
		}
		return "audio/ogg"
	case at(4, "ftyp") && len(head) >= 12:
		switch brand := string(head[8:12]); {
		case brand == "M4A " || brand == "M4B " || brand == "M4P ":
			return "audio/mp4"
		case brand == "qt  ":
			return "video/quicktime"
		case brand == "heic" || brand == "heix" || brand == "heim" || brand == "heis":
			return "image/heic"
		case brand == "mif1" || brand == "msf1":
			return "image/heif"
		case brand == "avif" || brand == "avis":
			return "image/avif"
		case strings.HasPrefix(brand, "3g2"):
			return "video/3gpp2"
		case strings.HasPrefix(brand, "3gp"):
			return "video/3gpp"
		case detected == "application/octet-stream":
			return "video/mp4" // isom, M4V, avc1, dash and the like
		}
	case at(0, "fLaC"):
		return "audio/flac"
	case at(0, "#!AMR"):
		return "audio/amr"
	}
	if detected == "application/octet-stream" && len(head) >= 3 && head[0] == 0xFF && head[1]&0xE0 == 0xE0 {
		// An MPEG audio frame header: layer bits 00 are AAC's ADTS, the
		// rest MP3 (a file without an ID3 tag in front).
		if head[1]&0x06 == 0 {
			return "audio/aac"
		}
		if head[2]&0xF0 != 0xF0 { // not the invalid bitrate index
			return "audio/mpeg"
		}
	}
	if strings.HasPrefix(detected, "text/plain") || strings.HasPrefix(detected, "text/xml") {
		if bytes.Contains(bytes.ToLower(head), []byte("<svg")) {
			return "image/svg+xml"
		}
	}
	return detected
}

// zipFormats are the formats that are zip archives inside, by extension.
var zipFormats = map[string]string{
	".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
	".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
	".odt":  "application/vnd.oasis.opendocument.text",
	".ods":  "application/vnd.oasis.opendocument.spreadsheet",
	".odp":  "application/vnd.oasis.opendocument.presentation",
	".epub": "application/epub+zip",
}

// textFormats are plain-text formats, by extension.
var textFormats = map[string]string{
	".csv":  "text/csv; charset=utf-8",
	".md":   "text/markdown; charset=utf-8",
	".json": "application/json",
	".ics":  "text/calendar; charset=utf-8",
	".vcf":  "text/vcard; charset=utf-8",
}

// mimeExt is the spool copy's extension by type, for whoever looks into
// the spool directory; the type itself travels in store.OutFile.
var mimeExt = map[string]string{
	"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
	"application/pdf": ".pdf", "text/plain": ".txt", "audio/ogg": ".ogg", "audio/mpeg": ".mp3",
	"audio/mp4": ".m4a", "video/mp4": ".mp4", "video/webm": ".webm", "application/zip": ".zip",
}

// byteSize says n bytes as a person reads a file's size.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// DropSpool removes a copy SpoolFile took that no message will send.
func (r *Runner) DropSpool(name string) {
	if r.opt.SpoolDir == "" || store.ValidateSpoolName(name) != nil {
		return
	}
	if err := os.Remove(filepath.Join(r.opt.SpoolDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.log.Warn("remove a copy no message sends", "file", name, "err", err)
	}
}
