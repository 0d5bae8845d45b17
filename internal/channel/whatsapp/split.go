package whatsapp

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxMessageRunes is the longest text Send puts in one WhatsApp message.
// WhatsApp accepts longer messages, but its apps fold them behind "Read
// more" and older clients truncate; 4000 characters keeps each part whole.
const MaxMessageRunes = 4000

// SplitText cuts text into parts of at most max runes each (max < 1 means
// MaxMessageRunes). It cuts at the last paragraph break that leaves a part
// at least half full, else at the last line break, else at the last space,
// else between two characters — never inside a UTF-8 sequence, and not
// between a character and a joiner, variation selector or combining mark
// that belongs to it. The whitespace at a cut is dropped; parts are never
// empty or blank. Text that fits is returned as is, in one part; text with
// nothing but whitespace yields no parts.
func SplitText(text string, max int) []string {
	if max < 1 {
		max = MaxMessageRunes
	}
	if strings.TrimSpace(text) == "" {
		return nil
	}
	var parts []string
	for utf8.RuneCountInString(text) > max {
		// window is the longest prefix that fits.
		window := text[:byteOffset(text, max)]
		cut, next := splitPoint(window, text, max)
		part := strings.TrimRightFunc(text[:cut], unicode.IsSpace)
		text = strings.TrimLeftFunc(text[next:], unicode.IsSpace)
		if strings.TrimSpace(part) != "" {
			parts = append(parts, part)
		}
	}
	if strings.TrimSpace(text) != "" {
		parts = append(parts, text)
	}
	return parts
}

// splitPoint chooses where to cut text, whose first max runes are window:
// the part ends at cut and the rest starts at next (both byte offsets).
func splitPoint(window, text string, max int) (cut, next int) {
	half := byteOffset(window, max/2)
	for _, sep := range []string{"\n\n", "\n", " "} {
		if i := strings.LastIndex(window, sep); i > 0 && i >= half {
			return i, i + len(sep)
		}
	}
	// No boundary in the second half: cut between characters, moving back
	// over anything that must stay with the character before it.
	cut = len(window)
	for steps := 0; steps < 8 && cut > 0; steps++ {
		r, _ := utf8.DecodeRuneInString(text[cut:])
		prev, size := utf8.DecodeLastRuneInString(text[:cut])
		if !joinsPrevious(r) && prev != '\u200d' {
			break
		}
		cut -= size
	}
	if cut == 0 { // a run of joiners longer than we look back: cut anyway
		cut = len(window)
	}
	return cut, cut
}

// joinsPrevious reports whether r is drawn together with the character
// before it: a zero-width joiner, a variation selector, a combining mark, or
// an emoji skin-tone modifier.
func joinsPrevious(r rune) bool {
	switch {
	case r == '\u200d', r >= '\ufe00' && r <= '\ufe0f', r >= 0x1f3fb && r <= 0x1f3ff:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc)
}

// byteOffset returns the byte offset just after the first n runes of s.
func byteOffset(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}
