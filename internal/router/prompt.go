package router

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

// PromptMessage is one chat message as the agent reads it.
type PromptMessage struct {
	Sender    string // the display name the sender chose: anyone can pick any name
	SenderID  string // the sender's id as the channel knows it: no participant chooses it
	FromOwner bool   // written by the owner (their own account, or the local terminal)
	Time      time.Time
	Text      string
	Quote     string // what a reply quotes, as the sender's app claims it
	// QuoteSender is who wrote the quoted message, as the sender's app
	// claims it (or as the store knows it).
	QuoteSender string
	Attachments []store.Attachment // the media it carried, as the host kept them
}

// GroupDir is where a group's folder is in its container: attachments'
// paths in a prompt are under it.
const GroupDir = "/workspace/group"

// Caps bound a prompt (finding 9): a flood of messages, or one huge one,
// must not become an unbounded prompt.
type Caps struct {
	MaxMessages     int // most messages in one prompt; the newest are kept
	MaxBytes        int // largest prompt in bytes; the newest messages are kept
	MaxMessageBytes int // longest single message text; longer ones are cut with a marker
}

// Prompt is a formatted catch-up and how many messages it left out.
type Prompt struct {
	Text    string
	Kept    int // messages in the prompt (the newest)
	Omitted int // older messages left out by the caps
}

// FormatPrompt renders the catch-up as
//
//	<messages>
//	<message sender="Name" sender_id="…" time="…">text</message>
//	<message sender="Owner" sender_id="…" from_owner="true" time="…">text</message>
//	<message sender="Name" sender_id="…" time="…" quoted="what it replies to" quoted_sender="…">text</message>
//	<message sender="Name" sender_id="…" time="…">caption<attachment kind="image" type="image/jpeg" path="/workspace/group/media/…" bytes="…"/></message>
//	<message sender="Name" sender_id="…" time="…" transcript="true">what the voice note said<attachment kind="voice" …/></message>
//	</messages>
//
// with every value escaped (finding 10: & < > " ' and control characters),
// within caps. older is how many messages before msgs were left out
// unloaded (R11); the note in front counts them with those the caps cut.
// Times are shown in loc.
//
// R18: a display name is the sender's own choice, so every message also
// carries the sender's id, and the owner's messages a marker no participant
// can set; the CLAUDE.md templates tell the model to go by those.
func FormatPrompt(msgs []PromptMessage, older int, caps Caps, loc *time.Location) Prompt {
	const open, close = "<messages>\n", "</messages>"
	lines := make([]string, 0, min(len(msgs), caps.MaxMessages))
	size := len(open) + len(close) + len(omittedNote(older+len(msgs)))
	// Walk from the newest back, so the caps keep the newest messages.
	for i := len(msgs) - 1; i >= 0 && len(lines) < caps.MaxMessages; i-- {
		line := formatMessage(msgs[i], caps.MaxMessageBytes, loc)
		if size+len(line) > caps.MaxBytes && len(lines) > 0 {
			break
		}
		size += len(line)
		lines = append(lines, line)
	}
	var b strings.Builder
	b.Grow(size)
	omitted := older + len(msgs) - len(lines)
	if omitted > 0 {
		b.WriteString(omittedNote(omitted))
	}
	b.WriteString(open)
	for i := len(lines) - 1; i >= 0; i-- {
		b.WriteString(lines[i])
	}
	b.WriteString(close)
	return Prompt{Text: b.String(), Kept: len(lines), Omitted: omitted}
}

func omittedNote(n int) string {
	return fmt.Sprintf("[%d older messages were left out of this catch-up]\n", n)
}

func formatMessage(m PromptMessage, maxText int, loc *time.Location) string {
	text := clean(m.Text)
	if len(text) > maxText {
		cut := sanitize.Truncate(text, maxText)
		text = cut + fmt.Sprintf(" …[message truncated, %d bytes left out]", len(text)-len(cut))
	}
	owner, quoted := "", ""
	if m.FromOwner {
		owner = ` from_owner="true"`
	}
	if m.Quote != "" {
		quoted = ` quoted="` + escape(sanitize.Truncate(clean(m.Quote), maxText), true) + `"`
	}
	if m.QuoteSender != "" {
		quoted += ` quoted_sender="` + escape(sanitize.Truncate(clean(m.QuoteSender), 200), true) + `"`
	}
	var media strings.Builder
	for _, a := range m.Attachments {
		media.WriteString(formatAttachment(a))
		if a.Transcribed {
			quoted += ` transcript="true"`
		}
	}
	return `<message sender="` + escape(clean(m.Sender), true) + `" sender_id="` + escape(clean(m.SenderID), true) + `"` +
		owner + ` time="` + m.Time.In(loc).Format(time.RFC3339) + `"` + quoted + `>` + escape(text, false) + media.String() + "</message>\n"
}

// formatAttachment is an attachment as the prompt carries it: what it is,
// where the agent finds it (never its bytes: media count toward the caps
// by this reference alone), and, when it was not kept or transcribed, why.
func formatAttachment(a store.Attachment) string {
	var b strings.Builder
	b.WriteString(`<attachment kind="` + escape(clean(a.Kind), true) + `"`)
	attr := func(name, v string) {
		if v != "" {
			b.WriteString(" " + name + `="` + escape(clean(v), true) + `"`)
		}
	}
	attr("type", a.MIME)
	if a.Path != "" {
		attr("path", GroupDir+"/"+a.Path)
		attr("bytes", fmt.Sprint(a.Bytes))
	}
	attr("name", a.FileName)
	attr("note", a.Note)
	b.WriteString("/>")
	return b.String()
}

// clean makes s valid XML character data: invalid UTF-8 becomes U+FFFD;
// control characters other than tab, newline and carriage return, and the
// non-characters U+FFFE and U+FFFF, are removed.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return r
		case unicode.IsControl(r) || r == 0xFFFE || r == 0xFFFF:
			return -1
		}
		return r
	}, s)
}

// escape escapes the five XML specials. Carriage returns are written as
// references so parsers do not turn them into newlines; inside attributes
// tabs and newlines are too, since parsers normalize them to spaces there.
func escape(s string, attr bool) string {
	if attr {
		return attrEscaper.Replace(s)
	}
	return textEscaper.Replace(s)
}

var (
	xmlSpecials = []string{"&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;", "\r", "&#xD;"}
	textEscaper = strings.NewReplacer(xmlSpecials...)
	attrEscaper = strings.NewReplacer(slices.Concat(xmlSpecials, []string{"\n", "&#xA;", "\t", "&#x9;"})...)
)

// Trigger matches a message addressed to the assistant: "@Name" at the
// start (after spaces), case-insensitive, followed by the end or a
// character that cannot continue a name ("@Andy hi", "@andy, hi"; not
// "@Andyx", not "hey @Andy").
type Trigger struct {
	re    *regexp.Regexp
	runes int // characters Match needs to see after leading white space
}

// NewTrigger builds the trigger for a word such as "@Andy"; the word is
// matched literally (regexp-quoted).
func NewTrigger(word string) Trigger {
	return Trigger{
		re:    regexp.MustCompile(`(?i)^\s*` + regexp.QuoteMeta(word) + `(?:$|[^\p{L}\p{N}_])`),
		runes: utf8.RuneCountInString(word) + 1, // the word and the character after it
	}
}

// Match reports whether text starts with the trigger.
func (t Trigger) Match(text string) bool { return t.re.MatchString(text) }

// Len is how many characters of a text, after its leading white space,
// Match needs to decide: a text's start that long matches as the whole
// text would.
func (t Trigger) Len() int { return t.runes }
