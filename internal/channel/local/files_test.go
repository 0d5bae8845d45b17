package local

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/channeltest"
)

// Small but real headers of each format, enough for the sniffer.
var (
	pngData  = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 32)...)
	jpegData = append([]byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), make([]byte, 32)...)
	pdfData  = []byte("%PDF-1.7\n1 0 obj\n<<>>\nendobj\n")
	mp4Data  = append([]byte("\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"), make([]byte, 16)...)
	zipData  = append([]byte("PK\x03\x04"), make([]byte, 40)...)
	// An Ogg page with one segment whose packet starts with OpusHead: a
	// voice note as chat apps record them; the same page with Vorbis is
	// music.
	opusData   = oggPage("OpusHead\x01\x01\x38\x01")
	vorbisData = oggPage("\x01vorbis\x00\x00\x00\x00")
)

func oggPage(packet string) []byte {
	h := append([]byte("OggS\x00\x02"), make([]byte, 20)...)
	h = append(h, 1, byte(len(packet))) // one segment of the packet's length
	return append(h, packet...)
}

func TestDetectKind(t *testing.T) {
	cases := []struct {
		data []byte
		name string
		kind channel.MediaKind
		mime string
	}{
		{pngData, "photo.png", channel.KindImage, "image/png"},
		{pngData, "report.pdf", channel.KindImage, "image/png"}, // the content wins over the name
		{jpegData, "x", channel.KindImage, "image/jpeg"},
		{pdfData, "scan.PDF", channel.KindDocument, "application/pdf"},
		{pdfData, "holiday.jpg", channel.KindDocument, "application/pdf"},
		{mp4Data, "clip.mp4", channel.KindVideo, "video/mp4"},
		{mp4Data, "song.m4a", channel.KindAudio, "audio/mp4"},
		{opusData, "note", channel.KindVoice, "audio/ogg; codecs=opus"},
		{opusData, "note.opus", channel.KindVoice, "audio/ogg; codecs=opus"},
		{vorbisData, "song.ogg", channel.KindAudio, "audio/ogg"},
		{[]byte("\xff\xfb\x90\x00\x12\x34\x56"), "talk.mp3", channel.KindAudio, "audio/mpeg"},
		{zipData, "letter.docx", channel.KindDocument, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
		{zipData, "stuff.zip", channel.KindDocument, "application/zip"},
		{[]byte("# Notes\n- milk\n"), "list.md", channel.KindDocument, "text/markdown; charset=utf-8"},
		{[]byte("# Notes\n- milk\n"), "list.txt", channel.KindDocument, "text/plain; charset=utf-8"},
		// A name never makes an image of bytes that are not one.
		{[]byte{0, 1, 2, 3, 4, 5}, "fake.png", channel.KindDocument, "application/octet-stream"},
		{[]byte("just text"), "fake.mp3", channel.KindDocument, "text/plain; charset=utf-8"},
	}
	for _, tc := range cases {
		kind, mime := DetectKind(tc.data, tc.name)
		if kind != tc.kind || mime != tc.mime {
			t.Errorf("DetectKind(%.12q, %q) = %s, %q; want %s, %q", tc.data, tc.name, kind, mime, tc.kind, tc.mime)
		}
	}
}

func TestCleanFileName(t *testing.T) {
	for in, want := range map[string]string{
		"report.pdf":             "report.pdf",
		"../../etc/passwd":       "passwd",
		`C:\Users\x\evil.exe`:    "evil.exe",
		".envrc":                 "envrc",
		"-rf":                    "rf",
		"..":                     "file",
		"":                       "file",
		"a\x1b[2Jb\u202Ec.txt":   "a[2Jbc.txt",
		" photo .jpg ":           "photo .jpg",
		"bad\xffname":            "bad\uFFFDname",
		strings.Repeat("é", 150): strings.Repeat("é", 100),
	} {
		if got := CleanFileName(in); got != want {
			t.Errorf("CleanFileName(%q) = %q, want %q", in, got, want)
		}
	}
	long := CleanFileName(strings.Repeat("x", 300) + ".pdf")
	if len(long) != 200 || !strings.HasSuffix(long, "x.pdf") {
		t.Errorf("a long name is cut to %d bytes keeping its extension: %q", len(long), long)
	}
}

func TestDeliverFilesBecomeAttachments(t *testing.T) {
	c, r := connected(t)
	_, err := c.Deliver(context.Background(), Draft{Chat: "local:main", Sender: "a", ReplyTo: "abc123",
		Files: []DraftFile{{Name: "cat.png", Data: pngData}, {Name: ".tax\u202e.pdf", Data: pdfData}, {Name: "voice", Data: opusData}}})
	if err != nil {
		t.Fatal(err)
	}
	m := r.Messages()[0]
	if m.Text != "" || m.ReplyTo != "abc123" || len(m.Attachments) != 3 {
		t.Fatalf("message %+v", m)
	}
	want := []struct {
		kind channel.MediaKind
		mime string
		name string
		data []byte
	}{
		{channel.KindImage, "image/png", "cat.png", pngData},
		{channel.KindDocument, "application/pdf", "tax.pdf", pdfData},
		{channel.KindVoice, "audio/ogg; codecs=opus", "voice", opusData},
	}
	for i, a := range m.Attachments {
		w := want[i]
		if a.Kind != w.kind || a.MIME != w.mime || a.FileName != w.name || a.Size != int64(len(w.data)) {
			t.Errorf("attachment %d: %+v, want %+v", i, a, w)
		}
		var buf bytes.Buffer
		if err := a.Fetch(context.Background(), &buf, a.Size); err != nil || !bytes.Equal(buf.Bytes(), w.data) {
			t.Errorf("attachment %d: Fetch at its own size: %v, %d bytes", i, err, buf.Len())
		}
		buf.Reset()
		if err := a.Fetch(context.Background(), &buf, a.Size-1); !errors.Is(err, channel.ErrTooLarge) || buf.Len() != 0 {
			t.Errorf("attachment %d: Fetch one byte short: %v, wrote %d bytes", i, err, buf.Len())
		}
	}
}

func TestDeliverRejectsFiles(t *testing.T) {
	c := New(quiet, WithMediaMax(100))
	t.Cleanup(func() { c.Close() })
	r := &channeltest.Handler{}
	c.Connect(context.Background(), r)
	f := func(name string, n int) DraftFile { return DraftFile{Name: name, Data: bytes.Repeat([]byte("x"), n)} }
	cases := []struct {
		d    Draft
		want string
	}{
		{Draft{Files: []DraftFile{f("a/b", 1)}}, "contains '/'"},
		{Draft{Files: []DraftFile{f("a\x00b", 1)}}, "contains '/' or NUL"},
		{Draft{Files: []DraftFile{f("bad\xff", 1)}}, "UTF-8"},
		{Draft{Files: []DraftFile{f("", 1)}}, "empty file name"},
		{Draft{Files: []DraftFile{f("..", 1)}}, "not a file's name"},
		{Draft{Files: []DraftFile{f(strings.Repeat("n", 256), 1)}}, "at most 255"},
		{Draft{Files: []DraftFile{f("empty", 0)}}, "is empty"},
		{Draft{Files: []DraftFile{f("big", 101)}}, "larger than the media limit (100 bytes)"},
		{Draft{Files: []DraftFile{f("a", 60), f("b", 60)}}, "120 bytes together"},
		{Draft{Files: make([]DraftFile, 11)}, "11 files: at most 10"},
		{Draft{Text: " ", Files: []DraftFile{f("a", 1)}}, "empty message"},
		{Draft{Text: "hi", ReplyTo: "no spaces"}, "reply_to: message id"},
		{Draft{}, "empty message"},
	}
	for _, tc := range cases {
		tc.d.Chat = "local:main"
		_, err := c.Deliver(context.Background(), tc.d)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Deliver(%.60v): %v, want an error with %q", tc.d, err, tc.want)
		}
	}
	if _, err := c.Deliver(context.Background(), Draft{Chat: "local:main", Files: []DraftFile{f("big", 101)}}); !errors.Is(err, channel.ErrTooLarge) {
		t.Errorf("oversize file: %v, want ErrTooLarge", err)
	}
	if n := len(r.Messages()); n != 0 {
		t.Errorf("%d rejected drafts reached the handler", n)
	}
	// The limits themselves are allowed.
	if _, err := c.Deliver(context.Background(), Draft{Chat: "local:main", Files: []DraftFile{f("a", 50), f("b", 50)}}); err != nil {
		t.Errorf("two files at the limit together: %v", err)
	}
}

func TestSendFileWritesAPrivateFileAndPublishes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "local", "files")
	c := New(quiet, WithFiles(dir, time.Hour), WithMediaMax(1000))
	defer c.Close()
	events, cancel := c.Subscribe("local:main")
	defer cancel()
	// A file older than the retention goes at the next send; a newer one stays.
	os.MkdirAll(dir, 0o755)
	old, recent := filepath.Join(dir, "old"), filepath.Join(dir, "recent")
	os.WriteFile(old, []byte("x"), 0o600)
	os.WriteFile(recent, []byte("x"), 0o600)
	os.Chtimes(old, time.Now().Add(-2*time.Hour), time.Now().Add(-2*time.Hour))

	id, err := c.SendFile(context.Background(), "local:main", channel.File{Name: "../.report.pdf", MIME: "application/pdf", Kind: channel.KindDocument, Data: pdfData, Caption: "your report"})
	if err != nil {
		t.Fatal(err)
	}
	ev := <-events
	wantPath := filepath.Join(dir, id+"-report.pdf")
	if ev.Type != EventFile || ev.ID != id || ev.Name != "report.pdf" || ev.MIME != "application/pdf" || ev.Kind != "document" ||
		ev.Bytes != int64(len(pdfData)) || ev.Path != wantPath || ev.Text != "your report" || ev.Chat != "local:main" {
		t.Errorf("event %+v, want path %s", ev, wantPath)
	}
	data, err := os.ReadFile(wantPath)
	if err != nil || !bytes.Equal(data, pdfData) {
		t.Errorf("file: %v, %q", err, data)
	}
	for path, want := range map[string]os.FileMode{wantPath: 0o600, dir: 0o700} {
		if info, err := os.Stat(path); err != nil || info.Mode().Perm() != want {
			t.Errorf("%s: %v, mode %v, want %v", path, err, info.Mode().Perm(), want)
		}
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file past the retention is still there: %v", err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("a recent file was removed: %v", err)
	}

	// Each file gets a new name: nothing is overwritten.
	id2, err := c.SendFile(context.Background(), "local:main", channel.File{Name: "report.pdf", Data: []byte("two")})
	if err != nil || id2 == id {
		t.Fatalf("second file: %s, %v", id2, err)
	}
	if data, _ := os.ReadFile(wantPath); !bytes.Equal(data, pdfData) {
		t.Error("the second file overwrote the first")
	}
	<-events

	if _, err := c.SendFile(context.Background(), "local:main", channel.File{Name: "x", Data: make([]byte, 1001)}); !errors.Is(err, channel.ErrTooLarge) {
		t.Errorf("oversize file: %v", err)
	}
	if _, err := c.SendFile(context.Background(), "whatsapp:x", channel.File{Name: "x", Data: []byte("x")}); err == nil {
		t.Error("a file to a chat not local was sent")
	}
	if _, err := New(quiet).SendFile(context.Background(), "local:main", channel.File{Name: "x", Data: []byte("x")}); err == nil || !strings.Contains(err.Error(), "without a files directory") {
		t.Errorf("no files directory: %v", err)
	}
	c.Close()
	if _, err := c.SendFile(context.Background(), "local:main", channel.File{Name: "x", Data: []byte("x")}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

func TestSweep(t *testing.T) {
	dir := t.TempDir()
	c := New(quiet, WithFiles(filepath.Join(dir, "files"), 0))
	if n, err := c.Sweep(time.Hour); n != 0 || err != nil {
		t.Errorf("missing directory: %d, %v", n, err)
	}
	os.Mkdir(filepath.Join(dir, "files"), 0o700)
	for i, age := range []time.Duration{0, 2 * time.Hour, 3 * time.Hour} {
		p := filepath.Join(dir, "files", string(rune('a'+i)))
		os.WriteFile(p, nil, 0o600)
		os.Chtimes(p, time.Now().Add(-age), time.Now().Add(-age))
	}
	os.Mkdir(filepath.Join(dir, "files", "sub"), 0o700)
	os.Chtimes(filepath.Join(dir, "files", "sub"), time.Now().Add(-5*time.Hour), time.Now().Add(-5*time.Hour))
	if n, err := c.Sweep(time.Hour); n != 2 || err != nil {
		t.Errorf("Sweep = %d, %v; want the 2 old files", n, err)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "files"))
	if len(left) != 2 || left[0].Name() != "a" || left[1].Name() != "sub" {
		t.Errorf("left %v", left)
	}
}

func TestReactAndSendQuoting(t *testing.T) {
	c := New(quiet)
	defer c.Close()
	events, cancel := c.Subscribe("local:work")
	defer cancel()
	if err := c.React(context.Background(), "local:work", channel.MessageRef{ID: "m-1"}, "👀"); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Type != EventReaction || ev.ID != "m-1" || ev.Emoji != "👀" || ev.Chat != "local:work" {
		t.Errorf("reaction event %+v", ev)
	}
	if err := c.React(context.Background(), "local:work", channel.MessageRef{ID: "m-1"}, ""); err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Type != EventReaction || ev.Emoji != "" {
		t.Errorf("removal event %+v", ev)
	}
	// A family emoji is several code points joined.
	if err := c.React(context.Background(), "local:work", channel.MessageRef{ID: "m-1"}, "👨\u200d👩\u200d👧"); err != nil {
		t.Errorf("joined emoji: %v", err)
	}
	<-events
	for _, bad := range []struct {
		id, emoji string
	}{{"m 1", "👀"}, {"", "👀"}, {"m-1", "\x1b[2J"}, {"m-1", strings.Repeat("👀", 17)}, {"m-1", "\xff"}} {
		if err := c.React(context.Background(), "local:work", channel.MessageRef{ID: bad.id}, bad.emoji); err == nil {
			t.Errorf("React(%q, %q) accepted", bad.id, bad.emoji)
		}
	}

	ids, err := c.SendQuoting(context.Background(), "local:work", "Andy: yes", channel.MessageRef{ID: "m-1", Text: "ok?"})
	if err != nil || len(ids) != 1 || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(ids[0]) {
		t.Fatalf("SendQuoting = %v, %v", ids, err)
	}
	if ev := <-events; ev.Type != EventReply || ev.ID != ids[0] || ev.ReplyTo != "m-1" || ev.Text != "Andy: yes" {
		t.Errorf("quoting reply %+v", ev)
	}
	if _, err := c.SendQuoting(context.Background(), "local:work", "x", channel.MessageRef{ID: "bad id"}); err == nil {
		t.Error("a quote of an invalid id was sent")
	}
	select {
	case ev := <-events:
		t.Errorf("a refused call published %+v", ev)
	default:
	}
}

// What agents send to local chats stays for the retention, so the files
// directory holds a few files' worth at most: beyond, a send is refused
// (the router gives it up and tells the agent).
func TestSendFileIsBounded(t *testing.T) {
	dir := t.TempDir()
	c := New(nil, WithMediaMax(1000), WithFiles(dir, time.Hour))
	f := channel.File{Name: "page.txt", MIME: "text/plain", Kind: channel.KindDocument, Data: bytes.Repeat([]byte("p"), 1000)}
	sent := 0
	var err error
	for range heldFiles + 2 {
		if _, err = c.SendFile(context.Background(), MainChat, f); err != nil {
			break
		}
		sent++
	}
	if sent != heldFiles || err == nil || !strings.Contains(err.Error(), "not sent") {
		t.Fatalf("%d files sent, then %v; want %d, then a refusal", sent, err, heldFiles)
	}
}
