package channel

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// SplitText cuts text into parts of at most max each, a character counting
// width(r) (WhatsApp counts characters, Telegram UTF-16 units). It cuts at
// the last paragraph break that leaves a part at least half full, else at
// the last line break, else at the last space, else between two
// characters — never inside a UTF-8 sequence, and not between a character
// and a joiner, variation selector or combining mark that belongs to it.
// The white space at a cut is dropped; parts are never empty or blank.
// Text that fits is returned as is, in one part; text of nothing but white
// space yields no parts. max must be at least 1.
func SplitText(text string, max int, width func(rune) int) []string {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	var parts []string
	for measure(text, width) > max {
		// window is the longest prefix that fits.
		window := text[:prefixFitting(text, max, width)]
		cut, next := splitPoint(window, text, width)
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

// splitPoint chooses where to cut text, whose longest fitting prefix is
// window: the part ends at cut and the rest starts at next (byte offsets).
func splitPoint(window, text string, width func(rune) int) (cut, next int) {
	half := prefixFitting(window, measure(window, width)/2, width)
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
	if cut == 0 { // one character wider than max: it goes alone
		_, cut = utf8.DecodeRuneInString(text)
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

// measure is the length of s, each character counting width(r).
func measure(s string, width func(rune) int) int {
	n := 0
	for _, r := range s {
		n += width(r)
	}
	return n
}

// prefixFitting is the byte length of the longest prefix of s that
// measures at most max.
func prefixFitting(s string, max int, width func(rune) int) int {
	n := 0
	for i, r := range s {
		if n+width(r) > max {
			return i
		}
		n += width(r)
	}
	return len(s)
}
