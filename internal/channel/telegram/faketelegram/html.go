package faketelegram

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tags are the HTML tags Telegram's parse_mode HTML knows.
var tags = map[string]bool{
	"b": true, "strong": true, "i": true, "em": true, "u": true, "ins": true, "s": true, "strike": true, "del": true,
	"a": true, "code": true, "pre": true, "tg-spoiler": true, "span": true, "blockquote": true, "tg-emoji": true,
}

// ParseHTML checks s as Telegram checks a message in parse_mode HTML and
// returns the text it shows (tags dropped, entities decoded). Its errors
// read like Telegram's ("can't parse entities: …"). Beyond well-formed
// tags and entities it holds Telegram's nesting rules: a code or pre
// contains no other tag (but a pre its one code) and sits in no bold,
// italic, underline, strike, spoiler or link; a link contains no link.
func ParseHTML(s string) (string, error) {
	var text strings.Builder
	var stack []string
	for i := 0; i < len(s); {
		switch c := s[i]; c {
		case '<':
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				return "", parseErr("unclosed start tag at byte offset %d", i)
			}
			tag := s[i+1 : i+end]
			i += end + 1
			if name, ok := strings.CutPrefix(tag, "/"); ok {
				name = strings.ToLower(strings.TrimSpace(name))
				if len(stack) == 0 || stack[len(stack)-1] != name {
					return "", parseErr("can't find start tag corresponding to end tag %q", name)
				}
				stack = stack[:len(stack)-1]
				continue
			}
			name, attrs, err := splitTag(tag)
			if err != nil {
				return "", err
			}
			if err := checkNesting(stack, name, attrs); err != nil {
				return "", err
			}
			stack = append(stack, name)
		case '&':
			end := strings.IndexByte(s[i:], ';')
			if end < 0 || end > 10 {
				return "", parseErr("can't find end of the entity starting at byte offset %d", i)
			}
			r, ok := entity(s[i+1 : i+end])
			if !ok {
				return "", parseErr("unsupported HTML entity %q", s[i:i+end+1])
			}
			text.WriteRune(r)
			i += end + 1
		case '>':
			return "", parseErr("unexpected '>' at byte offset %d: escape it as &gt;", i)
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			text.WriteRune(r)
			i += size
		}
	}
	if len(stack) > 0 {
		return "", parseErr("can't find end tag corresponding to start tag %q", stack[len(stack)-1])
	}
	return text.String(), nil
}

func parseErr(format string, args ...any) error {
	return errors.New("can't parse entities: " + fmt.Sprintf(format, args...))
}

// splitTag parses a start tag's name and its attributes.
func splitTag(tag string) (string, map[string]string, error) {
	name, rest, _ := strings.Cut(tag, " ")
	name = strings.ToLower(name)
	if !tags[name] {
		return "", nil, parseErr("unsupported start tag %q", name)
	}
	attrs := map[string]string{}
	rest = strings.TrimSpace(rest)
	for rest != "" {
		key, after, ok := strings.Cut(rest, "=")
		if !ok || !strings.HasPrefix(after, `"`) {
			return "", nil, parseErr("bad attribute in tag %q", name)
		}
		end := strings.IndexByte(after[1:], '"')
		if end < 0 {
			return "", nil, parseErr("unclosed attribute value in tag %q", name)
		}
		val, err := ParseHTML(after[1 : 1+end])
		if err != nil {
			return "", nil, err
		}
		attrs[strings.TrimSpace(key)] = val
		rest = strings.TrimSpace(after[end+2:])
	}
	return name, attrs, nil
}

// checkNesting applies Telegram's rules to a tag opened inside stack.
func checkNesting(stack []string, name string, attrs map[string]string) error {
	switch name {
	case "a":
		if attrs["href"] == "" {
			return parseErr("a link without href")
		}
	case "span":
		if attrs["class"] != "tg-spoiler" {
			return parseErr("a span must have class tg-spoiler")
		}
	case "code":
		if c, ok := attrs["class"]; ok && !strings.HasPrefix(c, "language-") {
			return parseErr("bad code class %q", c)
		}
	}
	for i, open := range stack {
		switch {
		case open == "pre" && name == "code" && i == len(stack)-1:
		case open == "code" || open == "pre":
			return parseErr("tag %q inside %q", name, open)
		case (name == "code" || name == "pre") && open != "blockquote":
			return parseErr("tag %q inside %q", name, open)
		case name == "a" && open == "a":
			return parseErr("a link inside a link")
		}
	}
	return nil
}

// entity decodes the named and numeric entities Telegram supports.
func entity(e string) (rune, bool) {
	switch e {
	case "lt":
		return '<', true
	case "gt":
		return '>', true
	case "amp":
		return '&', true
	case "quot":
		return '"', true
	}
	if n, ok := strings.CutPrefix(e, "#"); ok {
		base := 10
		if h, ok := strings.CutPrefix(n, "x"); ok {
			n, base = h, 16
		}
		v, err := strconv.ParseUint(n, base, 32)
		if err != nil || !utf8.ValidRune(rune(v)) {
			return 0, false
		}
		return rune(v), true
	}
	return 0, false
}
