package telegram

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MarkdownToHTML converts the model's Markdown to the HTML subset Telegram
// renders (parse_mode HTML): **bold** and __bold__, *italic* and _italic_,
// `code`, ``` fenced blocks ``` (with a language), [links](url) to http(s)
// addresses only, and # headings as bold lines. Everything else — lists,
// tables, quotes, a link to another scheme, a marker without its match —
// stays as the text it is, with &, < and > escaped. Emphasis does not
// cross a line.
//
// The output is always well-formed for Telegram: every tag opened is
// closed in order, and Telegram's nesting rules hold — nothing inside
// code, no code inside bold, italic or a link (a `span` there stays as
// written), no link inside a link.
// shown is false when the message would show nothing (Telegram refuses an
// empty one): send the text plain then.
func MarkdownToHTML(md string) (html string, shown bool) {
	var w htmlWriter
	lines := strings.SplitAfter(md, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if lang, ok := fenceOpen(line); ok {
			var code strings.Builder
			j := i + 1
			for ; j < len(lines) && !isFence(lines[j]); j++ {
				code.WriteString(lines[j])
			}
			w.raw("<pre>")
			if lang != "" {
				w.raw(`<code class="language-` + lang + `">`)
			} else {
				w.raw("<code>")
			}
			w.text(strings.TrimSuffix(code.String(), "\n"))
			w.raw("</code></pre>")
			if j < len(lines) && strings.HasSuffix(lines[j], "\n") {
				w.raw("\n")
			}
			i = j
			continue
		}
		body, nl := strings.CutSuffix(line, "\n")
		if h, ok := heading(body); ok {
			w.raw("<b>")
			inline(&w, h, allowed{})
			w.raw("</b>")
		} else {
			inline(&w, body, allowed{links: true, code: true})
		}
		if nl {
			w.raw("\n")
		}
	}
	return w.b.String(), w.shown
}

// htmlWriter builds the HTML, escaping text.
type htmlWriter struct {
	b     strings.Builder
	shown bool // a character other than white space was written as text
}

func (w *htmlWriter) raw(s string) { w.b.WriteString(s) }

func (w *htmlWriter) text(s string) {
	for _, r := range s {
		switch r {
		case '&':
			w.b.WriteString("&amp;")
		case '<':
			w.b.WriteString("&lt;")
		case '>':
			w.b.WriteString("&gt;")
		case '"':
			w.b.WriteString("&quot;")
		default:
			w.b.WriteRune(r)
		}
		if !unicode.IsSpace(r) {
			w.shown = true
		}
	}
}

// fenceOpen reports a line that opens a fenced code block, and its
// language when it names a plain one.
func fenceOpen(line string) (lang string, ok bool) {
	rest, ok := strings.CutPrefix(strings.TrimRight(line, " \t\r\n"), "```")
	if !ok {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	if rest == "" || len(rest) > 32 || strings.ContainsFunc(rest, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '+' || r == '#')
	}) {
		// No language, or one that is not a plain word: the fence still
		// opens, without naming it (an unusual info string is not
		// trusted into an attribute).
		if strings.Contains(rest, "`") {
			return "", false // ```code``` on one line: inline code
		}
		return "", true
	}
	return rest, true
}

// isFence reports a line that closes a fenced code block.
func isFence(line string) bool { return strings.TrimRight(line, " \t\r\n") == "```" }

// heading is the text of a "# Heading" line.
func heading(line string) (string, bool) {
	n := 0
	for n < len(line) && line[n] == '#' {
		n++
	}
	if n == 0 || n > 6 || n >= len(line) || line[n] != ' ' {
		return "", false
	}
	h := strings.TrimSpace(line[n:])
	return h, h != ""
}

// allowed is what an inline span may contain, by Telegram's rules for
// nesting: code contains nothing and is inside nothing; a link contains no
// link; bold and italic contain anything but code.
type allowed struct{ links, code bool }

// inline writes one line's inline Markdown.
func inline(w *htmlWriter, s string, may allowed) {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && isASCIIPunct(s[i+1]):
			w.text(s[i+1 : i+2])
			i += 2
			continue
		case c == '`':
			n := run(s[i:], '`')
			fence := s[i : i+n]
			if j := strings.Index(s[i+n:], fence); j > 0 && may.code {
				code := s[i+n : i+n+j]
				if strings.TrimSpace(code) != "" {
					w.raw("<code>")
					w.text(code)
					w.raw("</code>")
					i += n + j + n
					continue
				}
			}
			w.text(fence)
			i += n
			continue
		case c == '*' || c == '_':
			if end, inner, tag, ok := emphasis(s, i); ok {
				w.raw("<" + tag + ">")
				inline(w, inner, allowed{links: may.links})
				w.raw("</" + tag + ">")
				i = end
				continue
			}
			n := run(s[i:], c)
			w.text(s[i : i+n])
			i += n
			continue
		case c == '[' && may.links:
			if end, text, href, ok := link(s, i); ok {
				w.raw(`<a href="`)
				w.text(href)
				w.raw(`">`)
				inline(w, text, allowed{})
				w.raw("</a>")
				i = end
				continue
			}
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		w.text(s[i : i+size])
		i += size
	}
}

// emphasis finds the emphasis that opens at s[i] ('*' or '_'): its end
// (after the closing marker), the text inside and the tag ("b" for a
// double marker, "i" for a single). Like Markdown, a marker opens only
// before a non-space and closes only after one; and only at word
// boundaries, so snake_case and 2*3*4 stay as written.
func emphasis(s string, i int) (end int, inner, tag string, ok bool) {
	c := s[i]
	n := run(s[i:], c)
	if n > 2 {
		return 0, "", "", false
	}
	marker := s[i : i+n]
	start := i + n
	if start >= len(s) || s[start] == ' ' || s[start] == '\t' {
		return 0, "", "", false
	}
	if i > 0 && isWordByte(s[i-1]) {
		return 0, "", "", false
	}
	for j := start + 1; j <= len(s)-n; j++ {
		if s[j:j+n] != marker || s[j-1] == ' ' || s[j-1] == '\t' || s[j-1] == '\\' {
			continue
		}
		// The closing marker is exactly as long as the opening one.
		if (j+n < len(s) && s[j+n] == c) || s[j-1] == c {
			continue
		}
		if j+n < len(s) && isWordByte(s[j+n]) {
			continue
		}
		tag = "i"
		if n == 2 {
			tag = "b"
		}
		return j + n, s[start:j], tag, true
	}
	return 0, "", "", false
}

// link finds the [text](url) link that opens at s[i]: its end, text and
// address. Only absolute http and https addresses make links.
func link(s string, i int) (end int, text, href string, ok bool) {
	closeText := strings.Index(s[i:], "](")
	if closeText <= 1 {
		return 0, "", "", false
	}
	text = s[i+1 : i+closeText]
	if strings.ContainsAny(text, "[]") {
		return 0, "", "", false
	}
	rest := s[i+closeText+2:]
	closeURL := strings.IndexByte(rest, ')')
	if closeURL < 0 {
		return 0, "", "", false
	}
	href = rest[:closeURL]
	if !safeURL(href) {
		return 0, "", "", false
	}
	return i + closeText + 2 + closeURL + 1, text, href, true
}

// safeURL reports an absolute http(s) address without white space,
// control characters or quotes.
func safeURL(s string) bool {
	if len(s) > 2048 || strings.ContainsFunc(s, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '"' || r == '<' || r == '>' || r == '\\' || !unicode.IsPrint(r)
	}) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}

// run is the number of c at the start of s.
func run(s string, c byte) int {
	n := 0
	for n < len(s) && s[n] == c {
		n++
	}
	return n
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b >= 0x80
}

func isASCIIPunct(b byte) bool {
	return strings.IndexByte("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", b) >= 0
}
