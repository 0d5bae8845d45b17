package agent

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

// mediaRunner is a Runner with a group "family" and host directories of
// its own, for the media methods (no container runtime needed).
func mediaRunner(t *testing.T) (*Runner, string) {
	t.Helper()
	home := t.TempDir()
	st := testenv.OpenStore(t, filepath.Join(home, "t.db"), store.Options{})
	if err := st.PutGroup(context.Background(), store.Group{Folder: "family", Name: "Family", Trigger: "@Andy", AddedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	r := NewRunner(Options{Store: st, GroupsDir: filepath.Join(home, "groups"), SessionsDir: filepath.Join(home, "sessions"),
		SpoolDir: filepath.Join(home, "outbox"), Logger: slog.New(slog.DiscardHandler)})
	return r, home
}

func writeString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

// owner is the uid and gid of path, without following a link.
func owner(t *testing.T, path string) (int, int) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return int(sys.Uid), int(sys.Gid)
}

func TestSaveMediaWritesTheContainerUsersFile(t *testing.T) {
	ctx := context.Background()
	r, home := mediaRunner(t)
	n, err := r.SaveMedia(ctx, "family", "3EB0C1-1.jpg", writeString("a photo"))
	if err != nil || n != int64(len("a photo")) {
		t.Fatalf("SaveMedia: %d, %v", n, err)
	}
	media := filepath.Join(home, "groups", "family", "media")
	file := filepath.Join(media, "3EB0C1-1.jpg")
	if b, err := os.ReadFile(file); err != nil || string(b) != "a photo" {
		t.Fatalf("the file holds %q (%v)", b, err)
	}
	for path, mode := range map[string]os.FileMode{file: 0o600, media: 0o700 | fs.ModeDir} {
		if st, _ := os.Lstat(path); st.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", path, st.Mode(), mode)
		}
	}
	// A root daemon hands the file to the group's own id, which its
	// container runs as; an ordinary user's daemon keeps it (its
	// containers run as that user).
	id, err := r.identity(ctx, "family")
	if err != nil {
		t.Fatal(err)
	}
	want := os.Geteuid()
	if id >= 0 {
		want = id
		if id < FirstContainerID {
			t.Fatalf("the group's id %d is not a container id", id)
		}
	}
	for _, p := range []string{file, media, filepath.Dir(media)} {
		if uid, gid := owner(t, p); uid != want || gid != want && id >= 0 {
			t.Errorf("%s is owned by %d:%d, want %d", p, uid, gid, want)
		}
	}

	// A second file goes beside the first.
	if _, err := r.SaveMedia(ctx, "family", "3EB0C2-1.ogg", writeString("a voice note")); err != nil {
		t.Fatal(err)
	}
}

// A name the host did not choose, or one that already exists, is refused;
// what was there stays as it was, and a link the agent left under the name
// is not followed.
func TestSaveMediaNeverOverwritesOrFollows(t *testing.T) {
	ctx := context.Background()
	r, home := mediaRunner(t)
	if _, err := r.SaveMedia(ctx, "family", "a.jpg", writeString("first")); err != nil {
		t.Fatal(err)
	}
	media := filepath.Join(home, "groups", "family", "media")
	if _, err := r.SaveMedia(ctx, "family", "a.jpg", writeString("second")); err == nil {
		t.Error("an existing name was written again")
	}
	if b, _ := os.ReadFile(filepath.Join(media, "a.jpg")); string(b) != "first" {
		t.Errorf("the existing file now holds %q", b)
	}

	elsewhere := t.TempDir()
	if err := os.Symlink(filepath.Join(elsewhere, "planted"), filepath.Join(media, "b.jpg")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.SaveMedia(ctx, "family", "b.jpg", writeString("through the link")); err == nil {
		t.Error("a name holding the agent's link was written")
	}
	if _, err := os.Lstat(filepath.Join(elsewhere, "planted")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the link was followed: %v", err)
	}

	for _, name := range []string{"../x.jpg", ".hidden", "a/b.jpg", "", "x y.jpg"} {
		if _, err := r.SaveMedia(ctx, "family", name, writeString("x")); err == nil {
			t.Errorf("name %q accepted", name)
		}
	}
	if _, err := r.SaveMedia(ctx, "../family", "c.jpg", writeString("x")); err == nil {
		t.Error("folder ../family accepted")
	}
}

// R1: a media/ the agent replaced with a link out of its folder is not
// followed: the file does not appear where the link leads.
func TestSaveMediaRefusesALinkedMediaDir(t *testing.T) {
	ctx := context.Background()
	for name, target := range map[string]func(elsewhere string) string{
		"out of the folder": func(elsewhere string) string { return elsewhere },
		"inside the folder": func(string) string { return "docs" },
	} {
		t.Run(name, func(t *testing.T) {
			r, home := mediaRunner(t)
			group := filepath.Join(home, "groups", "family")
			if err := os.MkdirAll(filepath.Join(group, "docs"), 0o700); err != nil {
				t.Fatal(err)
			}
			elsewhere := t.TempDir()
			if err := os.Symlink(target(elsewhere), filepath.Join(group, "media")); err != nil {
				t.Fatal(err)
			}
			_, err := r.SaveMedia(ctx, "family", "a.jpg", writeString("x"))
			if err == nil || !strings.Contains(err.Error(), "is not a directory") {
				t.Errorf("SaveMedia through a linked media/: %v", err)
			}
			for _, dir := range []string{elsewhere, filepath.Join(group, "docs")} {
				if _, err := os.Lstat(filepath.Join(dir, "a.jpg")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("the file appeared in %s", dir)
				}
			}
		})
	}
}

// A fetch that fails leaves nothing behind, and its error is still itself
// (the router tells an oversize photo by errors.Is).
func TestSaveMediaRemovesWhatAFailedFetchWrote(t *testing.T) {
	r, home := mediaRunner(t)
	tooLarge := errors.New("larger than the media limit")
	_, err := r.SaveMedia(context.Background(), "family", "big.mp4", func(w io.Writer) error {
		w.Write(bytes.Repeat([]byte("x"), 4096))
		return tooLarge
	})
	if !errors.Is(err, tooLarge) {
		t.Fatalf("SaveMedia: %v, want it to wrap the fetch's error", err)
	}
	if _, err := os.Lstat(filepath.Join(home, "groups", "family", "media", "big.mp4")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the partial file is still there: %v", err)
	}
}

// groupFile writes a file into the group's folder as its agent would.
func groupFile(t *testing.T, home, rel string, data []byte) {
	t.Helper()
	p := filepath.Join(home, "groups", "family", rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{255, 0, 0, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSpoolFileCopiesAndDetects(t *testing.T) {
	ctx := context.Background()
	r, home := mediaRunner(t)
	opus := append([]byte("OggS\x00\x02"), make([]byte, 22)...)
	opus = append(opus, "OpusHead\x01\x01"...)
	files := map[string][]byte{
		"chart.png":         pngBytes(t),
		"docs/plan.pdf":     []byte("%PDF-1.4\n%âãÏÓ\n1 0 obj\n<<>>\nendobj\n"),
		"notes.txt":         []byte("buy milk\n"),
		"media/reply.ogg":   opus,
		"drawing.svg":       []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>`),
		"fake.jpg":          []byte("not a picture at all\n"), // the name does not make it one
		"re\x1bport\n1.txt": []byte("text"),
	}
	for rel, data := range files {
		groupFile(t, home, rel, data)
	}
	cases := []struct {
		path, name, mime, kind string
		data                   []byte
	}{
		{"/workspace/group/chart.png", "chart.png", "image/png", "image", files["chart.png"]},
		{"chart.png", "chart.png", "image/png", "image", files["chart.png"]},
		{"/workspace/group/docs/plan.pdf", "plan.pdf", "application/pdf", "document", files["docs/plan.pdf"]},
		{"./docs//plan.pdf", "plan.pdf", "application/pdf", "document", files["docs/plan.pdf"]},
		{"notes.txt", "notes.txt", "text/plain; charset=utf-8", "document", files["notes.txt"]},
		{"media/reply.ogg", "reply.ogg", "audio/ogg; codecs=opus", "audio", opus},
		{"drawing.svg", "drawing.svg", "image/svg+xml", "document", files["drawing.svg"]},
		{"fake.jpg", "fake.jpg", "text/plain; charset=utf-8", "document", files["fake.jpg"]},
		{"re\x1bport\n1.txt", "report 1.txt", "text/plain; charset=utf-8", "document", []byte("text")},
	}
	for _, c := range cases {
		f, err := r.SpoolFile(ctx, "family", c.path, 1<<20)
		if err != nil {
			t.Errorf("SpoolFile %q: %v", c.path, err)
			continue
		}
		if f.Name != c.name || f.MIME != c.mime || f.Kind != c.kind || f.Caption != "" {
			t.Errorf("SpoolFile %q: %+v; want name %q, %s, %s", c.path, f, c.name, c.mime, c.kind)
		}
		if err := f.Validate(); err != nil {
			t.Errorf("SpoolFile %q: %v", c.path, err)
		}
		spooled := filepath.Join(home, "outbox", f.Spool)
		if b, err := os.ReadFile(spooled); err != nil || !bytes.Equal(b, c.data) {
			t.Errorf("SpoolFile %q: the copy holds %q (%v)", c.path, b, err)
		}
		if st, err := os.Lstat(spooled); err != nil || st.Mode() != 0o600 {
			t.Errorf("the copy %s: %v (%v), want mode 0600", spooled, st.Mode(), err)
		}
	}
	if st, err := os.Lstat(filepath.Join(home, "outbox")); err != nil || st.Mode() != 0o700|fs.ModeDir {
		t.Errorf("the spool directory: %v (%v), want 0700", st.Mode(), err)
	}
}

// What send_file must not send: each refusal is one line that says what
// to do, and none leaves a copy in the spool.
func TestSpoolFileRefuses(t *testing.T) {
	ctx := context.Background()
	r, home := mediaRunner(t)
	group := filepath.Join(home, "groups", "family")
	groupFile(t, home, "real.txt", []byte("mine"))
	groupFile(t, home, "big.bin", bytes.Repeat([]byte("x"), 2000))
	groupFile(t, home, "empty.txt", nil)
	elsewhere := t.TempDir()
	if err := os.WriteFile(filepath.Join(elsewhere, "secret.txt"), []byte("the host's"), 0o600); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"inside.txt":  "real.txt",
		"outside.txt": filepath.Join(elsewhere, "secret.txt"),
		"up.txt":      "../../../" + filepath.Base(elsewhere) + "/secret.txt",
		"outdir":      elsewhere,
	} {
		if err := os.Symlink(target, filepath.Join(group, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(group, "pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ path, want string }{
		{"inside.txt", "send the file itself, not a link"},
		{"outside.txt", "send the file itself, not a link"},
		{"up.txt", "send the file itself, not a link"},
		{"outdir/secret.txt", "leads out of /workspace/group through a link"},
		{"/workspace/group/outdir/secret.txt", "leads out of /workspace/group through a link"},
		{"pipe", "not a regular file"},
		{"/workspace/group/media/../../../etc/passwd", "may not contain '..'"},
		{"../family/real.txt", "may not contain '..'"},
		{"/workspace/global/CLAUDE.md", "only files under /workspace/group/ can be sent"},
		{"/etc/passwd", "only files under /workspace/group/ can be sent"},
		{"/workspace/groupie/x", "only files under /workspace/group/ can be sent"},
		{"/workspace/group/", "the group's folder itself"},
		{".", "the group's folder itself"},
		{"docs", "no such file"},
		{"media", "no such file"},
		{"outdir", "send the file itself, not a link"},
		{"big.bin", "the file is 2.0 KiB and files may be at most 1000 bytes"},
		{"empty.txt", "the file is empty"},
		{"", "the path is empty"},
		{"a\x00b", "NUL"},
	}
	if err := os.Mkdir(filepath.Join(group, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct{ path, want string }{"sub", "it is a directory"})
	for _, c := range cases {
		done := make(chan error, 1)
		go func() {
			_, err := r.SpoolFile(ctx, "family", c.path, 1000)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("SpoolFile %q: %v; want one line with %q", c.path, err, c.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("SpoolFile %q hangs", c.path)
		}
	}
	if _, err := r.SpoolFile(ctx, "nosuchgroup", "real.txt", 1000); err == nil {
		t.Error("a group without a folder sent a file")
	}
	if entries, _ := os.ReadDir(filepath.Join(home, "outbox")); len(entries) != 0 {
		t.Errorf("refusals left copies in the spool: %v", entries)
	}
	// The real file itself is fine.
	if _, err := r.SpoolFile(ctx, "family", "real.txt", 1000); err != nil {
		t.Errorf("SpoolFile real.txt: %v", err)
	}
}

func TestDetectType(t *testing.T) {
	ftyp := func(brand, compat string) []byte {
		return append([]byte("\x00\x00\x00\x18ftyp"+brand+"\x00\x00\x00\x00"+compat), make([]byte, 8)...)
	}
	cases := []struct {
		name       string
		head       []byte
		mime, kind string
	}{
		{"a.jpg", []byte("\xFF\xD8\xFF\xE0\x00\x10JFIF\x00"), "image/jpeg", "image"},
		{"a.webp", []byte("RIFF\x00\x00\x00\x00WEBPVP8 "), "image/webp", "image"},
		{"a.mp3", []byte("ID3\x04\x00\x00"), "audio/mpeg", "audio"},
		{"a.mp3", []byte("\xFF\xFB\x90\x64\x00\x00\x00"), "audio/mpeg", "audio"},
		{"a.aac", []byte("\xFF\xF1\x50\x80\x00\x1F\xFC"), "audio/aac", "audio"},
		{"a.flac", []byte("fLaC\x00\x00\x00\x22"), "audio/flac", "audio"},
		{"a.amr", []byte("#!AMR\n"), "audio/amr", "audio"},
		{"a.ogg", append(append([]byte("OggS\x00\x02"), make([]byte, 22)...), "\x01vorbis"...), "audio/ogg", "audio"},
		{"a.m4a", ftyp("M4A ", "mp42"), "audio/mp4", "audio"},
		{"a.mp4", ftyp("isom", "mp41"), "video/mp4", "video"},
		{"a.mov", ftyp("qt  ", "qt  "), "video/quicktime", "video"},
		{"a.heic", ftyp("heic", "mif1"), "image/heic", "image"},
		{"a.webm", []byte("\x1A\x45\xDF\xA3\x00"), "video/webm", "video"},
		{"a.docx", []byte("PK\x03\x04\x14\x00"), "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "document"},
		{"a.zip", []byte("PK\x03\x04\x14\x00"), "application/zip", "document"},
		{"a.csv", []byte("name,age\nAnn,3\n"), "text/csv; charset=utf-8", "document"},
		{"a.png", []byte("name,age\nAnn,3\n"), "text/plain; charset=utf-8", "document"},
		{"a.html", []byte("<!DOCTYPE html><html>"), "text/html; charset=utf-8", "document"},
		{"a.svg", []byte("<svg xmlns='http://www.w3.org/2000/svg'/>"), "image/svg+xml", "document"},
		{"a.bin", []byte("\x00\x01\x02\x03\x04"), "application/octet-stream", "document"},
	}
	for _, c := range cases {
		if mime, kind := detectType(c.head, c.name); mime != c.mime || kind != c.kind {
			t.Errorf("%s %q: %s, %s; want %s, %s", c.name, c.head, mime, kind, c.mime, c.kind)
		}
	}
}

func TestSweepMediaRemovesOnlyOldFiles(t *testing.T) {
	ctx := context.Background()
	r, home := mediaRunner(t)
	for _, name := range []string{"old.jpg", "new.jpg"} {
		if _, err := r.SaveMedia(ctx, "family", name, writeString(name)); err != nil {
			t.Fatal(err)
		}
	}
	media := filepath.Join(home, "groups", "family", "media")
	long := time.Now().Add(-40 * 24 * time.Hour)
	if err := os.Chtimes(filepath.Join(media, "old.jpg"), long, long); err != nil {
		t.Fatal(err)
	}
	// The agent's own: an old directory and a link to an old file
	// elsewhere; neither is the host's to remove, nor followed.
	elsewhere := t.TempDir()
	target := filepath.Join(elsewhere, "keep.txt")
	os.WriteFile(target, []byte("x"), 0o600)
	os.Chtimes(target, long, long)
	os.Symlink(target, filepath.Join(media, "link.txt"))
	os.Mkdir(filepath.Join(media, "dir"), 0o700)
	os.Chtimes(filepath.Join(media, "dir"), long, long)
	// Another group whose media/ is a link out: not followed.
	other := filepath.Join(home, "groups", "other")
	os.MkdirAll(other, 0o700)
	os.Symlink(elsewhere, filepath.Join(other, "media"))

	n, err := r.SweepMedia(ctx, 30*24*time.Hour)
	if n != 1 {
		t.Errorf("SweepMedia removed %d files (%v), want 1", n, err)
	}
	if err == nil || !strings.Contains(err.Error(), "group other") {
		t.Errorf("SweepMedia's error %v, want it to name the group whose media/ is a link", err)
	}
	for path, want := range map[string]bool{
		filepath.Join(media, "old.jpg"):  false,
		filepath.Join(media, "new.jpg"):  true,
		filepath.Join(media, "link.txt"): true,
		filepath.Join(media, "dir"):      true,
		target:                           true,
	} {
		if _, err := os.Lstat(path); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", path, err == nil, want)
		}
	}
	if _, err := r.SweepMedia(ctx, 0); err == nil {
		t.Error("a retention of 0 was accepted")
	}
}

// The spool holds a few files' worth at most, all groups together: agents
// sending in a loop faster than the chats take them are refused, not
// given the host's disk.
func TestSpoolFileIsBounded(t *testing.T) {
	ctx := context.Background()
	r, home := mediaRunner(t)
	const max = 1000
	groupFile(t, home, "page.txt", bytes.Repeat([]byte("p"), max))
	var err error
	copies := 0
	for range spoolFiles + 2 {
		if _, err = r.SpoolFile(ctx, "family", "page.txt", max); err != nil {
			break
		}
		copies++
	}
	if copies != spoolFiles || err == nil || !strings.Contains(err.Error(), "wait to be sent already") {
		t.Fatalf("%d copies taken, then %v; want %d, then a refusal", copies, err, spoolFiles)
	}
	entries, _ := os.ReadDir(r.opt.SpoolDir)
	r.DropSpool(entries[0].Name())
	if _, err := r.SpoolFile(ctx, "family", "page.txt", max); err != nil {
		t.Errorf("a copy sent (dropped) makes room: %v", err)
	}
}
