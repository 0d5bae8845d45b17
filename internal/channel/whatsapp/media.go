package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

// What whatsmeow does with media, and why Fetch goes the way it does:
//
//   - Client.Download reads the whole encrypted file into memory
//     (io.ReadAll, without a limit) and decrypts it into a second copy; the
//     message's FileLength is only compared afterwards. So it is not used.
//   - Client.DownloadMediaWithPathToFile streams into a file (32 KiB at a
//     time), checks the MAC and the hash and decrypts in place: memory stays
//     flat whatever the size. It has no size limit of its own and its HTTP
//     client no timeout, so Fetch bounds both.
//   - Client.Download(ToFile) fetches from the message's URL when it has one
//     that is not web.whatsapp.net: the sender chooses that URL, so the host
//     would fetch any address a participant names. Fetch uses the direct path
//     on WhatsApp's own media hosts only, and checks it starts with "/" so
//     that it cannot change the host ("@evil.example/…").

// downloadFunc downloads one media item of a message, decrypted and
// verified, into f: whatsmeow's DownloadMediaWithPathToFile in production
// (Channel.downloadMedia); tests put a fake in its place.
type downloadFunc func(ctx context.Context, m whatsmeow.DownloadableMessage, f whatsmeow.File) error

// mediaFetchTimeout bounds one download, however the caller's context is
// set: whatsmeow's media HTTP client has no timeout of its own.
const mediaFetchTimeout = 10 * time.Minute

// encryptionOverhead is what WhatsApp's encryption adds to a file: up to a
// block of AES-CBC padding and a 10-byte MAC. The encrypted download may be
// this much longer than the limit on the decrypted file.
const encryptionOverhead = 16 + 10

// fetchMedia writes media item m, which claims to be claimed bytes long, to
// w — at most max bytes, or it fails with an error wrapping
// channel.ErrTooLarge. A claim over max is refused without downloading;
// since the claim may lie, the download itself is bounded too.
//
// The download goes into an unnamed private temporary file (whatsmeow
// decrypts in place and must seek), then to w; neither holds the file in
// memory.
func fetchMedia(ctx context.Context, download downloadFunc, m whatsmeow.DownloadableMessage, claimed int64, w io.Writer, max int64) error {
	if claimed > max {
		return fmt.Errorf("media of %d bytes: %w (%d bytes)", claimed, channel.ErrTooLarge, max)
	}
	if err := checkDownloadable(m); err != nil {
		return err
	}
	tmp, err := os.CreateTemp("", "nanoclaw-media-*")
	if err != nil {
		return fmt.Errorf("media download: temporary file: %w", err)
	}
	// Unlinked at once: it is 0600 and gone from the directory, so nothing
	// can open it by name and a crash leaves nothing behind.
	_ = os.Remove(tmp.Name())
	defer tmp.Close()

	ctx, cancel := context.WithTimeout(ctx, mediaFetchTimeout)
	defer cancel()
	limit := max + encryptionOverhead
	if max > math.MaxInt64-encryptionOverhead {
		limit = math.MaxInt64
	}
	f := &boundedFile{f: tmp, limit: limit, over: cancel}
	err = download(ctx, m, f)
	if f.exceeded {
		// whatsmeow may retry another host after a failed write; the
		// cancelled context stops that, and the first reason is the one
		// to report.
		return fmt.Errorf("media download: more than %d bytes: %w", max, channel.ErrTooLarge)
	}
	if err != nil {
		return fmt.Errorf("media download from WhatsApp: %w", err)
	}
	st, err := tmp.Stat()
	if err != nil {
		return fmt.Errorf("media download: %w", err)
	}
	if st.Size() > max {
		return fmt.Errorf("media of %d bytes: %w (%d bytes)", st.Size(), channel.ErrTooLarge, max)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("media download: %w", err)
	}
	if _, err := io.Copy(&limitWriter{w: w, left: max}, tmp); err != nil {
		return fmt.Errorf("media download: writing the file: %w", err)
	}
	return nil
}

// maxDirectPathBytes bounds a media item's direct path; WhatsApp's are
// under 200 bytes.
const maxDirectPathBytes = 2048

// checkDownloadable refuses media whatsmeow should not be asked to fetch:
// without a path on WhatsApp's media hosts (see the note above), or without
// the keys and hashes that make the file verifiable — unencrypted media
// would be taken from the server unchecked.
func checkDownloadable(m whatsmeow.DownloadableMessage) error {
	p := m.GetDirectPath()
	if p == "" {
		return errors.New("media has no download path: the sender's app did not upload it")
	}
	if len(p) > maxDirectPathBytes || p[0] != '/' {
		return errors.New("media has an invalid download path: ask the sender to send it again")
	}
	for i := range len(p) {
		if p[i] <= ' ' || p[i] > '~' {
			return errors.New("media has an invalid download path: ask the sender to send it again")
		}
	}
	if len(m.GetMediaKey()) != 32 || len(m.GetFileEncSHA256()) != 32 || len(m.GetFileSHA256()) != 32 {
		return errors.New("media lacks its key or hashes: ask the sender to send it again")
	}
	return nil
}

// downloadMedia is the production downloadFunc: whatsmeow's streaming
// download from the direct path on WhatsApp's media hosts.
func (c *Channel) downloadMedia(ctx context.Context, m whatsmeow.DownloadableMessage, f whatsmeow.File) error {
	length := -1 // unknown: whatsmeow then does not compare
	if l, ok := m.(interface{ GetFileLength() uint64 }); ok && l.GetFileLength() > 0 && l.GetFileLength() <= math.MaxInt {
		length = int(l.GetFileLength())
	}
	return c.cli.DownloadMediaWithPathToFile(ctx, m.GetDirectPath(), m.GetFileEncSHA256(), m.GetFileSHA256(), m.GetMediaKey(),
		length, whatsmeow.GetMediaType(m), "", f)
}

// boundedFile is the whatsmeow.File a download goes into: a write that
// would make the file longer than limit fails, marks exceeded and calls
// over (which cancels the download).
//
// It wraps rather than embeds *os.File: embedding would pass on ReadFrom,
// through which io.Copy would write around the bound.
type boundedFile struct {
	f        *os.File
	limit    int64
	over     func()
	exceeded bool
}

var _ whatsmeow.File = (*boundedFile)(nil)

func (b *boundedFile) refuse() error {
	b.exceeded = true
	b.over()
	return channel.ErrTooLarge
}

func (b *boundedFile) Write(p []byte) (int, error) {
	pos, err := b.f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	if pos+int64(len(p)) > b.limit {
		return 0, b.refuse()
	}
	return b.f.Write(p)
}

func (b *boundedFile) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > b.limit {
		return 0, b.refuse()
	}
	return b.f.WriteAt(p, off)
}

func (b *boundedFile) Truncate(size int64) error {
	if size > b.limit {
		return b.refuse()
	}
	return b.f.Truncate(size)
}

func (b *boundedFile) Read(p []byte) (int, error)                { return b.f.Read(p) }
func (b *boundedFile) ReadAt(p []byte, off int64) (int, error)   { return b.f.ReadAt(p, off) }
func (b *boundedFile) Seek(off int64, whence int) (int64, error) { return b.f.Seek(off, whence) }
func (b *boundedFile) Stat() (os.FileInfo, error)                { return b.f.Stat() }

// limitWriter passes at most left bytes on to w; a write past that fails
// with channel.ErrTooLarge and writes nothing of itself.
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, channel.ErrTooLarge
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}
