package whatsapp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

// downloadable is an image message as WhatsApp delivers one: a direct path
// on its media hosts, a key and hashes, and a claimed length.
func downloadable(claimed uint64) *waE2E.ImageMessage {
	return &waE2E.ImageMessage{
		Mimetype:      proto.String("image/jpeg"),
		FileLength:    proto.Uint64(claimed),
		DirectPath:    proto.String("/v/t62.7118-24/12345_67890_n.enc?ccb=11-4&oh=01_Q5&oe=6A1B2C3D&_nc_sid=5e03e0"),
		URL:           proto.String("https://evil.example/steal"),
		MediaKey:      bytes.Repeat([]byte{1}, 32),
		FileEncSHA256: bytes.Repeat([]byte{2}, 32),
		FileSHA256:    bytes.Repeat([]byte{3}, 32),
	}
}

// fakeDownload stands in for whatsmeow: it writes data into the file as
// whatsmeow would (through io.Copy, 32 KiB at a time), or fails with err.
type fakeDownload struct {
	data  []byte
	err   error
	calls int
	got   whatsmeow.DownloadableMessage
}

func (d *fakeDownload) download(ctx context.Context, m whatsmeow.DownloadableMessage, f whatsmeow.File) error {
	d.calls++
	d.got = m
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("download without a deadline")
	}
	if d.err != nil {
		return d.err
	}
	_, err := io.Copy(f, bytes.NewReader(d.data))
	return err
}

// fetch converts a photo message from Bob with dl as the download and
// fetches its attachment, at most max bytes.
func fetch(t *testing.T, img *waE2E.ImageMessage, dl *fakeDownload, max int64) ([]byte, error) {
	t.Helper()
	evt := msgEvent(types.MessageInfo{MessageSource: types.MessageSource{Chat: bobPN, Sender: bobPN}}, &waE2E.Message{ImageMessage: img})
	m, ok := convert(evt, testIdentity(), dl.download)
	if !ok || len(m.Attachments) != 1 {
		t.Fatalf("converted to %+v, %v", m, ok)
	}
	var out bytes.Buffer
	err := m.Attachments[0].Fetch(context.Background(), &out, max)
	return out.Bytes(), err
}

func TestFetch(t *testing.T) {
	const max = 100_000
	photo := bytes.Repeat([]byte("JPEG"), 20_000) // 80 000 bytes

	t.Run("a photo is written whole, from the message's own media", func(t *testing.T) {
		img := downloadable(uint64(len(photo)))
		dl := &fakeDownload{data: photo}
		got, err := fetch(t, img, dl, max)
		if err != nil || !bytes.Equal(got, photo) {
			t.Fatalf("Fetch = %d bytes, %v; want the %d bytes", len(got), err, len(photo))
		}
		if dl.got != whatsmeow.DownloadableMessage(img) {
			t.Errorf("downloaded %v, want the message's image", dl.got)
		}
	})
	t.Run("exactly the limit is allowed", func(t *testing.T) {
		data := bytes.Repeat([]byte{7}, max)
		got, err := fetch(t, downloadable(max), &fakeDownload{data: data}, max)
		if err != nil || len(got) != max {
			t.Fatalf("Fetch = %d bytes, %v", len(got), err)
		}
	})
	t.Run("a claim over the limit is refused without downloading", func(t *testing.T) {
		dl := &fakeDownload{data: photo}
		got, err := fetch(t, downloadable(max+1), dl, max)
		if !errors.Is(err, channel.ErrTooLarge) || dl.calls != 0 || len(got) != 0 {
			t.Fatalf("Fetch = %v after %d downloads, %d bytes written; want ErrTooLarge and none", err, dl.calls, len(got))
		}
	})
	t.Run("a claim that lies: far more bytes than the limit", func(t *testing.T) {
		dl := &fakeDownload{data: bytes.Repeat([]byte{9}, 10*max)}
		got, err := fetch(t, downloadable(1000), dl, max)
		if !errors.Is(err, channel.ErrTooLarge) || len(got) != 0 {
			t.Fatalf("Fetch = %v, %d bytes written; want ErrTooLarge and nothing", err, len(got))
		}
	})
	t.Run("a claim that lies: one byte more than the limit", func(t *testing.T) {
		// Within what encryption adds, so only the decrypted size tells.
		got, err := fetch(t, downloadable(1000), &fakeDownload{data: bytes.Repeat([]byte{9}, max+1)}, max)
		if !errors.Is(err, channel.ErrTooLarge) || len(got) != 0 {
			t.Fatalf("Fetch = %v, %d bytes written; want ErrTooLarge and nothing", err, len(got))
		}
	})
	t.Run("a failed download is returned", func(t *testing.T) {
		boom := errors.New("media download failed with status code 404")
		got, err := fetch(t, downloadable(10), &fakeDownload{err: boom}, max)
		if !errors.Is(err, boom) || errors.Is(err, channel.ErrTooLarge) || len(got) != 0 {
			t.Fatalf("Fetch = %v, %d bytes; want the download's error", err, len(got))
		}
	})
	t.Run("the writer's failure is returned", func(t *testing.T) {
		evt := msgEvent(types.MessageInfo{MessageSource: types.MessageSource{Chat: bobPN, Sender: bobPN}}, &waE2E.Message{ImageMessage: downloadable(4)})
		m, _ := convert(evt, testIdentity(), (&fakeDownload{data: []byte("JPEG")}).download)
		full := errors.New("no space left on device")
		if err := m.Attachments[0].Fetch(context.Background(), failWriter{full}, max); !errors.Is(err, full) {
			t.Fatalf("Fetch = %v, want the writer's error", err)
		}
	})
	for _, tc := range []struct {
		name   string
		change func(*waE2E.ImageMessage)
		want   string
	}{
		{"no direct path (only the sender's URL)", func(m *waE2E.ImageMessage) { m.DirectPath = nil }, "no download path"},
		{"a direct path that would change the host", func(m *waE2E.ImageMessage) { m.DirectPath = proto.String("@evil.example/x") }, "invalid download path"},
		{"a direct path with a space", func(m *waE2E.ImageMessage) { m.DirectPath = proto.String("/v/x y") }, "invalid download path"},
		{"no media key: unencrypted, unverifiable", func(m *waE2E.ImageMessage) { m.MediaKey = nil }, "key or hashes"},
		{"no hash", func(m *waE2E.ImageMessage) { m.FileSHA256 = nil }, "key or hashes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := downloadable(10)
			tc.change(img)
			dl := &fakeDownload{data: []byte("x")}
			_, err := fetch(t, img, dl, max)
			if err == nil || !strings.Contains(err.Error(), tc.want) || dl.calls != 0 {
				t.Fatalf("Fetch = %v after %d downloads; want an error saying %q and no download", err, dl.calls, tc.want)
			}
		})
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

// The file whatsmeow downloads into refuses to grow past its limit by any
// of the ways whatsmeow writes (io.Copy, WriteAt, Truncate), and a refusal
// cancels the download.
func TestBoundedFile(t *testing.T) {
	newFile := func() (*boundedFile, *bool) {
		tmp, err := createTemp(t)
		if err != nil {
			t.Fatal(err)
		}
		cancelled := false
		return &boundedFile{f: tmp, limit: 10, over: func() { cancelled = true }}, &cancelled
	}
	f, cancelled := newFile()
	if n, err := io.Copy(f, strings.NewReader("0123456789")); err != nil || n != 10 {
		t.Fatalf("copy of 10 bytes: %d, %v", n, err)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, channel.ErrTooLarge) || !f.exceeded || !*cancelled {
		t.Errorf("write past the limit = %v (exceeded %v, cancelled %v)", err, f.exceeded, *cancelled)
	}
	f, _ = newFile()
	if _, err := io.Copy(f, strings.NewReader(strings.Repeat("y", 11))); !errors.Is(err, channel.ErrTooLarge) {
		t.Errorf("io.Copy past the limit = %v", err)
	}
	f, _ = newFile()
	if _, err := f.WriteAt([]byte("zz"), 9); !errors.Is(err, channel.ErrTooLarge) {
		t.Errorf("WriteAt past the limit = %v", err)
	}
	f, _ = newFile()
	if err := f.Truncate(1 << 30); !errors.Is(err, channel.ErrTooLarge) {
		t.Errorf("Truncate past the limit = %v", err)
	}
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Errorf("file grew to %d bytes", st.Size())
	}
}

func createTemp(t *testing.T) (*os.File, error) {
	f, err := os.CreateTemp(t.TempDir(), "bounded")
	if err == nil {
		t.Cleanup(func() { f.Close() })
	}
	return f, err
}

// Media sent "view once" is listed but never downloaded: its sender asked
// that it not be kept.
func TestFetchRefusesViewOnce(t *testing.T) {
	evt := msgEvent(types.MessageInfo{MessageSource: types.MessageSource{Chat: bobPN, Sender: bobPN}}, &waE2E.Message{ImageMessage: downloadable(10)})
	evt.IsViewOnce = true
	dl := &fakeDownload{data: []byte("JPEG")}
	m, ok := convert(evt, testIdentity(), dl.download)
	if !ok || len(m.Attachments) != 1 {
		t.Fatalf("converted to %+v, %v", m, ok)
	}
	var out bytes.Buffer
	if err := m.Attachments[0].Fetch(context.Background(), &out, 1000); !errors.Is(err, errViewOnce) || dl.calls != 0 || out.Len() != 0 {
		t.Errorf("Fetch = %v after %d downloads, %d bytes", err, dl.calls, out.Len())
	}
}
