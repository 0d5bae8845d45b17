package router

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// MediaKeeper keeps an inbound message's files in its group's folder
// (internal/agent's Runner in production): under media/NAME, created anew,
// through the folder's os.Root, owned by the group's container user.
type MediaKeeper interface {
	SaveMedia(ctx context.Context, folder, name string, fetch func(w io.Writer) error) (int64, error)
}

// Transcriber turns a voice note into text (internal/transcribe's Client).
type Transcriber interface {
	Enabled() bool
	Transcribe(ctx context.Context, audio io.Reader, fileName, mimeType string) (string, error)
}

// fetchTimeout bounds the fetch of one attachment, and its keeping.
const fetchTimeout = 2 * time.Minute

// extensions name a kept file's type for the tools that read it; the type
// itself is detected from the content.
var extensions = map[string]string{
	"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
	"audio/ogg": ".ogg", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/wave": ".wav",
	"video/mp4": ".mp4", "video/webm": ".webm", "video/3gpp": ".3gp",
	"application/pdf": ".pdf", "text/plain": ".txt", "application/zip": ".zip",
}

// keepMedia fetches each attachment of m into the group's media folder,
// bounded, and says what became of it: kept (its path, size and type) or
// not, and why. A voice note is transcribed on the host when a transcriber
// is set; its transcript becomes the message's text when the message has
// none. A failure is noted in the attachment, never a reason to lose the
// message.
func (r *Router) keepMedia(ctx context.Context, g store.Group, m *channel.Message) []store.Attachment {
	folder := g.Folder
	var kept []store.Attachment
	for i, a := range m.Attachments {
		if i == store.MaxAttachments {
			r.log.Warn("attachments beyond the limit left out", "chat", m.ChatJID, "id", m.ID, "count", len(m.Attachments))
			break
		}
		k := store.Attachment{Kind: string(a.Kind), MIME: mediaType(a.MIME), FileName: sanitize.FirstLine(a.FileName, 100)}
		if k.Validate() != nil { // a kind this host does not know: kept as a document
			k.Kind = string(channel.KindDocument)
		}
		var voice *bytes.Buffer
		switch {
		case r.opt.Media == nil || a.Fetch == nil:
			k.Note = "not kept: this host keeps no media"
		case a.Size > r.opt.MediaMaxBytes:
			k.Note = fmt.Sprintf("not fetched: %s is over the limit of %s (MEDIA_MAX_BYTES)", size(a.Size), size(r.opt.MediaMaxBytes))
		default:
			if a.Kind == channel.KindVoice {
				voice = new(bytes.Buffer)
			}
			name, n, err := r.saveMedia(ctx, folder, m.ID, i, a, &k, voice)
			switch {
			case errors.Is(err, channel.ErrTooLarge):
				k.Note = fmt.Sprintf("not fetched: over the limit of %s (MEDIA_MAX_BYTES)", size(r.opt.MediaMaxBytes))
				voice = nil
			case err != nil:
				r.log.Warn("media not kept", "chat", m.ChatJID, "id", m.ID, "kind", a.Kind, "err", err)
				k.Note = "could not be fetched: " + sanitize.FirstLine(err.Error(), 200)
				voice = nil
			default:
				k.Path, k.Bytes = store.MediaDir+"/"+name, n
			}
		}
		if a.Kind == channel.KindVoice && k.Note == "" {
			r.transcribe(ctx, g, m, &k, voice)
		}
		kept = append(kept, k)
	}
	return kept
}

// saveMedia fetches attachment i of message id into the group's media
// folder and returns the name it is kept under and its size. The type is
// the content's: the first bytes are read before the file is named, so a
// file that claims to be a photo but is not gets no photo's extension
// (Claude Code's Read goes by it); k.MIME is set to what was decided. A
// voice note is copied into voice too, for transcription.
func (r *Router) saveMedia(ctx context.Context, folder, id string, i int, a channel.Attachment, k *store.Attachment, voice *bytes.Buffer) (string, int64, error) {
	// The channel waits for this message to be stored: a stalled download
	// must not hold it, nor the messages behind it, long.
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	pr, pw := io.Pipe()
	fetched := make(chan error, 1)
	go func() {
		err := a.Fetch(ctx, pw, r.opt.MediaMaxBytes)
		pw.CloseWithError(err)
		fetched <- err
	}()
	defer func() {
		pr.CloseWithError(errors.New("not kept"))
		<-fetched
	}()
	head := make([]byte, 512)
	n, err := io.ReadFull(pr, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", 0, err
	}
	head = head[:n]
	k.MIME = contentType(head, k.MIME)
	fetch := func(w io.Writer) error {
		if voice != nil {
			w = io.MultiWriter(w, voice)
		}
		if _, err := w.Write(head); err != nil {
			return err
		}
		_, err := io.Copy(w, pr)
		return err
	}
	name := mediaName(id, i, "", k.MIME)
	size, err := r.opt.Media.SaveMedia(ctx, folder, name, fetch)
	if errors.Is(err, fs.ErrExist) {
		// The name is taken (a file the agent made, or this message's own
		// from before a crash that kept it unacknowledged): the file is
		// never created then, so nothing was read yet; another name.
		name = mediaName(id, i, rand.Text()[:8], k.MIME)
		size, err = r.opt.Media.SaveMedia(ctx, folder, name, fetch)
	}
	return name, size, err
}

// contentType decides a medium's type from its first bytes and what the
// sender's app claimed: the claim only where the content agrees or says
// nothing more (an Opus voice note sniffs as application/ogg; many audio
// and office files as octet-stream or zip), the content's otherwise (a PNG
// sent as a "JPEG" photo is a PNG).
func contentType(head []byte, claimed string) string {
	sniffed := mediaType(http.DetectContentType(head))
	top := func(t string) string { return strings.SplitN(t, "/", 2)[0] }
	switch {
	case claimed == "" || claimed == sniffed:
		return sniffed
	case sniffed == "application/octet-stream", sniffed == "application/zip":
		// The content does not say: a claim of an image or video, which a
		// reader would open as such, is not taken on trust.
		if t := top(claimed); t == "image" || t == "video" {
			return sniffed
		}
		return claimed
	case sniffed == "application/ogg" && top(claimed) == "audio":
		return claimed
	case strings.HasPrefix(sniffed, "text/plain") && top(claimed) != "image" && top(claimed) != "video" && top(claimed) != "audio":
		return claimed // JSON, CSV, code…: text the claim names better
	}
	return sniffed
}

// transcribe makes the voice note's transcript the message's text, or
// notes why there is none.
func (r *Router) transcribe(ctx context.Context, g store.Group, m *channel.Message, k *store.Attachment, audio *bytes.Buffer) {
	switch {
	case r.opt.Transcriber == nil || !r.opt.Transcriber.Enabled():
		k.Note = "not transcribed: no transcriber is set (TRANSCRIBE_URL)"
		return
	// Transcription costs the owner money and holds the chat's messages
	// while it runs: only for senders who may start a run, and a group
	// only so many an hour.
	case !g.Config.MayTrigger(m.Sender, m.FromMe):
		k.Note = "not transcribed: only the senders in trigger_senders are"
		return
	case r.transcriptions.Check(g.Folder) != nil:
		k.Note = "not transcribed: this group's voice notes are transcribed 30 at once, then one a minute"
		return
	}
	r.transcriptions.Wait(ctx, g.Folder) // Check passed: takes its place at once
	text, err := r.opt.Transcriber.Transcribe(ctx, audio, k.Path[len(store.MediaDir)+1:], k.MIME)
	if err != nil {
		r.log.Warn("voice note not transcribed", "chat", m.ChatJID, "id", m.ID, "err", err)
		k.Note = "not transcribed: " + sanitize.FirstLine(err.Error(), 200)
		return
	}
	if strings.TrimSpace(m.Text) == "" {
		m.Text, k.Transcribed = text, true
	}
}

// mediaName is the host's name for attachment i of message id: the id's
// safe characters, the position, a suffix when given, and an extension for
// the type.
func mediaName(id string, i int, suffix, mimeType string) string {
	safe := strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, id)
	ext, ok := extensions[mimeType]
	if !ok {
		ext = ".bin"
	}
	if suffix != "" {
		suffix = "-" + suffix
	}
	return fmt.Sprintf("%s-%d%s%s", safe[:min(len(safe), 60)], i, suffix, ext)
}

// mediaType is a MIME type without parameters, "" when it is none.
func mediaType(v string) string {
	t, _, err := mime.ParseMediaType(v)
	if err != nil || len(t) > 100 {
		return ""
	}
	return t
}

// size is a byte count for people.
func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
