package telegram

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxMessageUnits is the longest text of one Telegram message: 4096
// characters as Telegram counts them, in UTF-16 code units (an emoji
// outside the BMP is two).
const MaxMessageUnits = 4096

// maxCaptionUnits is the longest caption of a file.
const maxCaptionUnits = 1024

// SplitText cuts text into parts of at most max UTF-16 units each (max < 1
// means MaxMessageUnits). It cuts at the last paragraph break that leaves
// a part at least half full, else at the last line break, else at the last
// space, else between two characters — never inside a character, and not
// before a joiner, variation selector or combining mark. The white space
// at a cut is dropped; parts are never blank. Text that fits is one part;
// text of nothing but white space is none.
//
// The Markdown of a part is converted after the cut, and the markers it
// drops only make it shorter, so a converted part fits too.
func SplitText(text string, max int) []string {
	if max < 1 {
		max = MaxMessageUnits
	}
	if strings.TrimSpace(text) == "" {
		return nil
	}
	var parts []string
	for units(text) > max {
		window := text[:prefixFitting(text, max)]
		cut, next := splitPoint(window, text)
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
// window: the part ends at cut and the rest starts at next.
func splitPoint(window, text string) (cut, next int) {
	half := prefixFitting(window, units(window)/2)
	for _, sep := range []string{"\n\n", "\n", " "} {
		if i := strings.LastIndex(window, sep); i > 0 && i >= half {
			return i, i + len(sep)
		}
	}
	cut = len(window)
	for steps := 0; steps < 8 && cut > 0; steps++ {
		r, _ := utf8.DecodeRuneInString(text[cut:])
		prev, size := utf8.DecodeLastRuneInString(text[:cut])
		if !joinsPrevious(r) && prev != '\u200d' {
			break
		}
		cut -= size
	}
	if cut == 0 {
		cut = len(window)
	}
	if cut == 0 { // one character wider than max: it goes alone
		_, cut = utf8.DecodeRuneInString(text)
	}
	return cut, cut
}

// joinsPrevious reports characters drawn together with the one before.
func joinsPrevious(r rune) bool {
	switch {
	case r == '\u200d', r >= '\ufe00' && r <= '\ufe0f', r >= 0x1f3fb && r <= 0x1f3ff:
		return true
	}
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Mc)
}

// units is the length of s in UTF-16 code units.
func units(s string) int {
	n := 0
	for _, r := range s {
		n += runeUnits(r)
	}
	return n
}

func runeUnits(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// prefixFitting is the byte length of the longest prefix of s of at most
// max UTF-16 units.
func prefixFitting(s string, max int) int {
	n := 0
	for i, r := range s {
		if n+runeUnits(r) > max {
			return i
		}
		n += runeUnits(r)
	}
	return len(s)
}

// reopenFences makes each part's fenced code blocks whole for conversion:
// a part that ends inside a block gets it closed, and the next part opens
// it again. Only the converted text changes: the markers are not shown.
func reopenFences(parts []string) []string {
	out := make([]string, len(parts))
	open := false
	for i, p := range parts {
		if open {
			p = "```\n" + p
		}
		open = false
		for _, line := range strings.Split(p, "\n") {
			if open && isFence(line) {
				open = false
			} else if _, ok := fenceOpen(line); ok && !open {
				open = true
			}
		}
		if open {
			p += "\n```"
		}
		out[i] = p
	}
	return out
}
