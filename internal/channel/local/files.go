package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

// MaxFiles is the most files one draft may carry.
const MaxFiles = 10

// MaxFileNameBytes is the longest file name a draft may give.
const MaxFileNameBytes = 255

// DefaultMediaMaxBytes is the media limit of a channel made without
// WithMediaMax: MEDIA_MAX_BYTES's default.
const DefaultMediaMaxBytes = 25_000_000

// DraftFile is a file attached to a draft: the name the user gave it (shown,
// never used as a path by the host) and its bytes (base64 in JSON).
type DraftFile struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// Option configures a Channel made by New.
type Option func(*Channel)

// WithMediaMax sets the largest file a draft may carry and the channel may
// send (MEDIA_MAX_BYTES); the files of one draft together may not be larger
// either, as they are held in memory at once.
func WithMediaMax(n int64) Option { return func(c *Channel) { c.mediaMax = n } }

// WithFiles makes the channel able to send files (channel.FileSender): each
// is written into dir (FilesDir of the data home; made 0700), where `nanoclaw
// chat` and `send --wait` copy it from. SendFile removes files older than
// retention (MEDIA_RETENTION) from it; 0 keeps them.
func WithFiles(dir string, retention time.Duration) Option {
	return func(c *Channel) { c.filesDir, c.retention = dir, retention }
}

// FilesDir is where a daemon with data home home keeps the files its local
// chats were sent: host-only, never mounted into a container.
func FilesDir(home string) string { return filepath.Join(home, "local", "files") }

// MediaMax is the largest file the channel accepts in a draft or sends.
func (c *Channel) MediaMax() int64 { return c.mediaMax }

// validateFiles checks a draft's files without the size limit, which is the
// channel's (Deliver checks it).
func validateFiles(files []DraftFile) error {
	if len(files) > MaxFiles {
		return fmt.Errorf("%d files: at most %d in one message", len(files), MaxFiles)
	}
	for i, f := range files {
		if err := ValidateFileName(f.Name); err != nil {
			return fmt.Errorf("file %d: %w", i+1, err)
		}
		if len(f.Data) == 0 {
			return fmt.Errorf("file %d (%q) is empty", i+1, f.Name)
		}
	}
	return nil
}

// ValidateFileName checks the name a user gave a file: 1-255 bytes of valid
// UTF-8, no '/' or NUL, not "." or "..". The host shows it and never uses it
// as a path.
func ValidateFileName(name string) error {
	switch {
	case name == "":
		return errors.New("empty file name")
	case len(name) > MaxFileNameBytes:
		return fmt.Errorf("file name of %d bytes: at most %d", len(name), MaxFileNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("file name %q is not valid UTF-8", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("file name %q contains '/' or NUL: give a base name", name)
	case name == "." || name == "..":
		return fmt.Errorf("file name %q is not a file's name", name)
	}
	return nil
}

// CleanFileName makes a file name someone else chose safe to use as the last
// element of a path in a directory of the owner's (and to show): its base
// name only, without control, format or bidi characters, '\\', or a
// leading '.' or '-' (a hidden file such as .envrc can change what tools in
// that directory do; a file named -rf turns `rm *` into another command), at most 200 bytes with the extension kept; "file" when
// nothing is left.
func CleanFileName(name string) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == 0xFFFE || r == 0xFFFF {
			return -1
		}
		return r
	}, name)
	name = strings.TrimLeft(strings.TrimSpace(name), ".-")
	if len(name) > 200 {
		ext := filepath.Ext(name)
		if len(ext) > 20 {
			ext = ""
		}
		name = sanitize.Truncate(name, 200-len(ext)) + ext
	}
	if strings.TrimSpace(name) == "" {
		return "file"
	}
	return name
}

// attachment turns a draft's file into what the host fetches: its kind and
// MIME type from its content, the name only as a hint for what sniffing
// cannot tell.
func attachment(f DraftFile) channel.Attachment {
	kind, mime := DetectKind(f.Data, f.Name)
	data, name := f.Data, CleanFileName(f.Name)
	return channel.Attachment{
		Kind: kind, MIME: mime, Size: int64(len(data)), FileName: name,
		Fetch: func(ctx context.Context, w io.Writer, max int64) error {
			if int64(len(data)) > max {
				return fmt.Errorf("file %q of %d bytes: %w (%d bytes)", name, len(data), channel.ErrTooLarge, max)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			_, err := w.Write(data)
			return err
		},
	}
}

// extHints are MIME types for extensions whose content the standard sniffer
// (http.DetectContentType) cannot tell apart, by what it does say: a hint
// only refines a generic answer and never makes an image or video of bytes
// that are not one.
var extHints = map[string]map[string]string{
	"application/octet-stream": {
		".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".aac": "audio/aac", ".amr": "audio/amr",
		".opus": "audio/ogg", ".oga": "audio/ogg", ".ogg": "audio/ogg",
	},
	"application/zip": {
		".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
		".odt":  "application/vnd.oasis.opendocument.text",
		".epub": "application/epub+zip",
	},
	"text/plain; charset=utf-8": {
		".md": "text/markdown; charset=utf-8", ".csv": "text/csv; charset=utf-8", ".json": "application/json",
	},
	"video/mp4": {".m4a": "audio/mp4"}, // the same container; the name says there is no picture
}

// DetectKind is the media kind and MIME type of data, sniffed from its
// content; name's extension only refines what sniffing cannot tell (see
// extHints). Ogg audio carrying Opus is a voice note: the format chat apps
// record voice notes in.
func DetectKind(data []byte, name string) (channel.MediaKind, string) {
	mime := http.DetectContentType(data)
	if hint, ok := extHints[mime][strings.ToLower(filepath.Ext(name))]; ok {
		mime = hint
	}
	if mime == "application/ogg" || mime == "audio/ogg" {
		if isOggOpus(data) {
			return channel.KindVoice, "audio/ogg; codecs=opus"
		}
		mime = "audio/ogg"
	}
	switch {
	case strings.HasPrefix(mime, "image/"):
		return channel.KindImage, mime
	case strings.HasPrefix(mime, "audio/"):
		return channel.KindAudio, mime
	case strings.HasPrefix(mime, "video/"):
		return channel.KindVideo, mime
	}
	return channel.KindDocument, mime
}

// isOggOpus reports an Ogg stream whose first packet is Opus's header: the
// first page's header is 27 bytes plus one byte per segment.
func isOggOpus(data []byte) bool {
	if len(data) < 27 || !bytes.HasPrefix(data, []byte("OggS")) {
		return false
	}
	start := 27 + int(data[26])
	return len(data) >= start+8 && string(data[start:start+8]) == "OpusHead"
}

// SendFile implements channel.FileSender: it writes f into the channel's
// files directory under a name the host chooses ("<id>-<cleaned name>",
// created new, 0600) and publishes a file event with its path, which
// `nanoclaw chat` and `send --wait` copy from. Files older than the
// retention are removed first.
func (c *Channel) SendFile(ctx context.Context, jid string, f channel.File) (string, error) {
	if _, err := ParseChat(jid); err != nil {
		return "", err
	}
	if c.filesDir == "" {
		return "", errors.New("the local channel cannot send files: it was made without a files directory")
	}
	if int64(len(f.Data)) > c.mediaMax {
		return "", fmt.Errorf("file %q of %d bytes: %w (%d bytes)", f.Name, len(f.Data), channel.ErrTooLarge, c.mediaMax)
	}
	if !c.touch(jid) {
		return "", ErrClosed
	}
	if err := os.MkdirAll(c.filesDir, 0o700); err != nil {
		return "", fmt.Errorf("local files directory: %w", err)
	}
	// The directory may predate us with a wider mode; what the assistant
	// sends is the owner's alone.
	if err := os.Chmod(c.filesDir, 0o700); err != nil {
		return "", fmt.Errorf("local files directory: %w", err)
	}
	_, held, files, err := c.sweep(c.retention)
	if err != nil {
		c.log.Warn("remove old local files", "dir", c.filesDir, "err", err)
	}
	// What agents send here stays for the retention: a few files' worth at
	// most, so an agent sending in a loop cannot fill the host's disk.
	if files >= maxHeldFiles || held+int64(len(f.Data)) > heldFiles*c.mediaMax {
		return "", fmt.Errorf("the local chats' files take %d bytes in %d files already (kept for MEDIA_RETENTION): not sent", held, files)
	}
	id, name := newID(), CleanFileName(f.Name)
	path := filepath.Join(c.filesDir, id+"-"+name)
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("write the file for %s: %w", jid, err)
	}
	_, err = out.Write(f.Data)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("write the file for %s: %w", jid, err)
	}
	ev := Event{Type: EventFile, Chat: jid, ID: id, Name: name, MIME: f.MIME, Kind: string(f.Kind),
		Bytes: int64(len(f.Data)), Path: path, Text: f.Caption}
	if c.publish(ev) == 0 {
		c.log.Debug("local file has no viewer", "chat", jid, "id", id, "path", path)
	}
	return id, nil
}

// What the files directory holds at most: heldFiles files of the largest
// size, and maxHeldFiles files.
const (
	heldFiles    = 8
	maxHeldFiles = 1000
)

// Sweep removes the regular files of the files directory last modified
// more than olderThan ago, and returns how many it removed. The directory
// missing is no error.
func (c *Channel) Sweep(olderThan time.Duration) (int, error) {
	n, _, _, err := c.sweep(olderThan)
	return n, err
}

// sweep is Sweep (olderThan 0: nothing is removed) that also says what the
// directory holds after it: bytes and files.
func (c *Channel) sweep(olderThan time.Duration) (removed int, held int64, files int, err error) {
	if c.filesDir == "" {
		return 0, 0, 0, nil
	}
	entries, err := os.ReadDir(c.filesDir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, 0, nil
	}
	if err != nil {
		return 0, 0, 0, err
	}
	cutoff := time.Now().Add(-olderThan)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if olderThan > 0 && info.ModTime().Before(cutoff) {
			if err := os.Remove(filepath.Join(c.filesDir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, held, files, err
			}
			removed++
			continue
		}
		held += info.Size()
		files++
	}
	return removed, held, files, nil
}

// MaxEmojiBytes is the longest reaction accepted.
const MaxEmojiBytes = 64

// React implements channel.Reactor: it publishes a reaction event naming
// the message reacted to; emoji "" removes the reaction.
func (c *Channel) React(ctx context.Context, jid string, to channel.MessageRef, emoji string) error {
	if _, err := ParseChat(jid); err != nil {
		return err
	}
	if err := ValidateID(to.ID); err != nil {
		return fmt.Errorf("react to: %w", err)
	}
	if len(emoji) > MaxEmojiBytes || !utf8.ValidString(emoji) || strings.ContainsFunc(emoji, unicode.IsControl) {
		return fmt.Errorf("reaction %q: want one emoji (at most %d bytes, no control characters)", emoji, MaxEmojiBytes)
	}
	if c.isClosed() {
		return ErrClosed
	}
	c.publish(Event{Type: EventReaction, Chat: jid, ID: to.ID, Emoji: emoji})
	return nil
}

// SendQuoting implements channel.Quoter: Send, with the reply event naming
// the message it quotes.
func (c *Channel) SendQuoting(ctx context.Context, jid, text string, q channel.MessageRef) ([]string, error) {
	if err := ValidateID(q.ID); err != nil {
		return nil, fmt.Errorf("quote: %w", err)
	}
	return c.send(jid, text, q.ID)
}
