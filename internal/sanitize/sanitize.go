// Package sanitize makes text that came from outside — chat participants,
// the agent's model — safe for where it goes next: a byte budget, one line
// of a display name, the owner's terminal. Its functions never fail: what
// cannot be shown safely is left out.
package sanitize

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Truncate cuts s to at most n bytes without splitting a UTF-8 character.
func Truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Clip makes s valid UTF-8 (U+FFFD for a bad byte) of at most n bytes: a
// longer s is cut without splitting a character and ends in mark, which
// counts toward n. It bounds outside text quoted in logs, errors and records.
func Clip(s string, n int, mark string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	return Truncate(s, n-len(mark)) + mark
}

// FirstLine is the first non-blank line of s, trimmed and clipped to n
// bytes ("…" marks a cut): what an error quotes of a program's output.
func FirstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return Clip(s, n, "…")
}

// MaxNameRunes is the longest display name kept, in characters: WhatsApp's
// own limit for a group subject (push names are shorter still).
const MaxNameRunes = 100

// Name makes a display name chosen by someone else (a push name, a group
// subject) safe to store and to show the model (R19): one line, whitespace
// collapsed, no control, format or bidi characters, no '<' or '>' (it must
// not read as markup), at most MaxNameRunes characters ("…" marks a cut).
// Invalid UTF-8 becomes U+FFFD. Name is idempotent.
func Name(s string) string {
	var b strings.Builder
	n, space := 0, false // runes written; white space seen since the last
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		switch {
		case n > MaxNameRunes: // enough to know it is cut
		case unicode.IsSpace(r):
			space = n > 0
		case !invisible(r) && r != '<' && r != '>':
			if space {
				b.WriteByte(' ')
				n++
				space = false
			}
			b.WriteRune(r)
			n++
		}
	}
	if n <= MaxNameRunes {
		return b.String()
	}
	out := []rune(b.String())
	return strings.TrimRightFunc(string(out[:MaxNameRunes-1]), unicode.IsSpace) + "…"
}

// invisible reports characters that change how text around them is shown
// without being shown themselves: C0 and C1 controls, DEL, bidi overrides
// and isolates, zero-width and other format characters, and the
// non-characters U+FFFE and U+FFFF. The zero-width joiner and non-joiner
// stay: emoji sequences and several scripts need them.
func invisible(r rune) bool {
	switch {
	case r == '\u200C' || r == '\u200D':
		return false
	case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == 0xFFFE, r == 0xFFFF:
		return true
	}
	return false
}

// bidi reports the Unicode bidirectional formatting characters, which can
// make a line read differently from the bytes it holds.
func bidi(r rune) bool {
	switch {
	case r == '\u061C', r == '\u200E', r == '\u200F':
		return true
	case r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}

// Terminal makes text from the agent or a chat safe to print on the owner's
// terminal (R10): escape sequences (CSI such as colours and cursor moves;
// OSC such as clipboard writes and window titles; DCS, SOS, PM and APC
// strings) are removed whole, as are every other control character but
// newline and tab (C0 including carriage return, DEL, C1) and the bidi
// controls. Invalid UTF-8 becomes U+FFFD.
func Terminal(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\x1b':
			i += escape(s[i:])
		case r == '\u009b': // 8-bit CSI
			i += size + csiBody(s[i+size:])
		case r == '\u0090', r == '\u0098', r == '\u009d', r == '\u009e', r == '\u009f': // 8-bit DCS, SOS, OSC, PM, APC
			i += size + stringBody(s[i+size:])
		case unicode.IsControl(r) && r != '\n' && r != '\t' || bidi(r):
			i += size
		default:
			b.WriteString(s[i : i+size])
			i += size
		}
	}
	return b.String()
}

// escape returns the length of the escape sequence at the start of s (which
// starts with ESC), as a terminal would read it.
func escape(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[':
		return 2 + csiBody(s[2:])
	case ']', 'P', 'X', '^', '_':
		return 2 + stringBody(s[2:])
	}
	// ESC followed by intermediates (0x20-0x2F) and one final byte.
	i := 1
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e {
		i++
	}
	return i
}

// csiBody returns the length of a control sequence's parameters,
// intermediates and final byte (0x40-0x7E). A sequence cut off by another
// control character ends before it.
func csiBody(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x40 && c <= 0x7e:
			return i + 1
		case c < 0x20 || c >= 0x7f:
			return i
		}
	}
	return len(s)
}

// stringBody returns the length of a control string's body up to and
// including its terminator: BEL, ESC \ or the 8-bit ST (U+009C). An
// unterminated string runs to the end of s, as a terminal would swallow it.
func stringBody(s string) int {
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\a':
			return i + 1
		case s[i] == '\x1b':
			if i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
			return i // another sequence starts: this one ends here
		case strings.HasPrefix(s[i:], "\u009c"):
			return i + len("\u009c")
		}
	}
	return len(s)
}
