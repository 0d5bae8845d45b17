package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/ipc"
)

// Attachment is a message's media as the host kept it: a file in the
// group's folder, or a note saying why there is none.
type Attachment struct {
	Kind     string `json:"kind"`                // image, sticker, voice, audio, video or document (channel.MediaKind)
	MIME     string `json:"mime,omitempty"`      // as detected, or as the sender's app claimed it
	Path     string `json:"path,omitempty"`      // "media/NAME" in the group's folder; "" when not kept
	Bytes    int64  `json:"bytes,omitempty"`     // the kept file's size
	FileName string `json:"file_name,omitempty"` // the sender's name for it: shown, never a path
	Note     string `json:"note,omitempty"`      // why it was not kept, or not transcribed
	// Transcribed marks the voice note whose transcript is the message's
	// text.
	Transcribed bool `json:"transcribed,omitempty"`
}

// AttachmentKinds are the kinds an Attachment may be.
var AttachmentKinds = []string{"image", "sticker", "voice", "audio", "video", "document"}

// Limits of an Attachment's text fields.
const (
	MaxAttachments        = 10
	maxAttachmentName     = 200
	maxAttachmentNote     = 300
	maxAttachmentMIME     = 100
	maxMediaFileNameBytes = 100
)

// MediaDir is the directory of a group's folder the host keeps media in.
const MediaDir = "media"

// ValidateMediaPath accepts "media/NAME", NAME 1-100 ASCII letters,
// digits, '.', '_' or '-', not starting with '.': a name the host chose.
func ValidateMediaPath(p string) error {
	dir, name, ok := strings.Cut(p, "/")
	if !ok || dir != MediaDir || name == "" || len(name) > maxMediaFileNameBytes || name[0] == '.' ||
		strings.ContainsFunc(name, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("._-", r))
		}) || path.Clean(p) != p {
		return fmt.Errorf("media path %q: want %s/NAME of letters, digits, '.', '_' and '-'", p, MediaDir)
	}
	return nil
}

// Validate checks every field of a.
func (a Attachment) Validate() error {
	if !slices.Contains(AttachmentKinds, a.Kind) {
		return fmt.Errorf("attachment kind %q: want one of %s", a.Kind, strings.Join(AttachmentKinds, ", "))
	}
	if a.Path != "" {
		if err := ValidateMediaPath(a.Path); err != nil {
			return err
		}
	}
	if a.Bytes < 0 {
		return errors.New("attachment size is negative")
	}
	for _, f := range []struct {
		what, v string
		max     int
	}{{"MIME type", a.MIME, maxAttachmentMIME}, {"file name", a.FileName, maxAttachmentName}, {"note", a.Note, maxAttachmentNote}} {
		if len(f.v) > f.max || !utf8.ValidString(f.v) || strings.ContainsFunc(f.v, unicode.IsControl) {
			return fmt.Errorf("attachment %s: at most %d bytes of text without control characters", f.what, f.max)
		}
	}
	return nil
}

// encodeAttachments is the attachments column's value: "" for none, else
// their JSON.
func encodeAttachments(list []Attachment) (string, error) {
	if len(list) == 0 {
		return "", nil
	}
	if len(list) > MaxAttachments {
		return "", fmt.Errorf("%d attachments: at most %d", len(list), MaxAttachments)
	}
	for _, a := range list {
		if err := a.Validate(); err != nil {
			return "", err
		}
	}
	b, err := json.Marshal(list)
	return string(b), err
}

// decodeAttachments reads the attachments column strictly (finding 12):
// what the database holds is checked as if it came from outside.
func decodeAttachments(col string) ([]Attachment, error) {
	if col == "" {
		return nil, nil
	}
	var list []Attachment
	if err := ipc.DecodeStrict([]byte(col), &list); err != nil {
		return nil, fmt.Errorf("attachments: %w", err)
	}
	if len(list) > MaxAttachments {
		return nil, fmt.Errorf("%d attachments: at most %d", len(list), MaxAttachments)
	}
	for _, a := range list {
		if err := a.Validate(); err != nil {
			return nil, err
		}
	}
	return list, nil
}
