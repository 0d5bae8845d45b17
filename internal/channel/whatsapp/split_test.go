package whatsapp

import (
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSplitTextBoundaries(t *testing.T) {
	cases := []struct {
		name string
		text string
		max  int
		want []string
	}{
		{"fits", "hello world", 20, []string{"hello world"}},
		{"exactly max", "0123456789", 10, []string{"0123456789"}},
		{"empty", "", 10, nil},
		{"blank", " \n\n ", 2, nil},
		{"prefers a paragraph break", "aaaa bbbb\ncccc\n\ndddd eeee", 20, []string{"aaaa bbbb\ncccc", "dddd eeee"}},
		{"then a line break", "aaaa bbbb\ncccc dddd eeee", 20, []string{"aaaa bbbb\ncccc dddd", "eeee"}},
		{"then a space", "aaaa bbbb cccc dddd eeee", 12, []string{"aaaa bbbb", "cccc dddd", "eeee"}},
		{"a break too early is not taken", "a\n\nbbbbbbbbbbbbbbbbbb cc", 12, []string{"a\n\nbbbbbbbbb", "bbbbbbbbb cc"}},
		{"hard cut without any space", strings.Repeat("x", 25), 10, []string{strings.Repeat("x", 10), strings.Repeat("x", 10), strings.Repeat("x", 5)}},
		{"counts runes, not bytes", strings.Repeat("é", 12), 10, []string{strings.Repeat("é", 10), "éé"}},
		{"default max", strings.Repeat("y", MaxMessageRunes+1), 0, []string{strings.Repeat("y", MaxMessageRunes), "y"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := SplitText(tc.text, tc.max)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("SplitText(%q, %d)\n got  %q\n want %q", tc.text, tc.max, got, tc.want)
			}
		})
	}
}

func TestSplitTextKeepsCharactersWhole(t *testing.T) {
	// A family emoji is five code points joined by ZWJs; a flag-less
	// thumbs-up with a skin tone is two. A cut must not separate them.
	family := "👨\u200d👩\u200d👧"
	thumb := "👍🏽"
	accent := "e\u0301" // e + combining acute
	for _, unit := range []string{family, thumb, accent, "日本語", "🙂"} {
		text := strings.Repeat(unit, 50)
		n := utf8.RuneCountInString(unit)
		for _, max := range []int{7, 10, 13} {
			if max < n {
				continue
			}
			parts := SplitText(text, max)
			if strings.Join(parts, "") != text {
				t.Fatalf("%q max %d: parts do not join back to the text: %q", unit, max, parts)
			}
			for _, p := range parts {
				if !utf8.ValidString(p) {
					t.Errorf("%q max %d: invalid UTF-8 part %q", unit, max, p)
				}
				if c := utf8.RuneCountInString(p); c > max || c == 0 {
					t.Errorf("%q max %d: part of %d runes", unit, max, c)
				}
				if unit != "日本語" && unit != "🙂" && strings.Count(p, unit)*n != utf8.RuneCountInString(p) {
					t.Errorf("%q max %d: part %q splits a character", unit, max, p)
				}
			}
		}
	}
}

func TestSplitTextLongReply(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < 30000; i++ {
		b.WriteString("Paragraph with some words in it, repeated to fill the page. ")
		if i%7 == 6 {
			b.WriteString("\n\n")
		} else if i%3 == 2 {
			b.WriteString("\n")
		}
	}
	text := b.String()
	parts := SplitText(text, MaxMessageRunes)
	if len(parts) < 8 {
		t.Fatalf("%d parts for %d runes", len(parts), utf8.RuneCountInString(text))
	}
	words := 0
	for i, p := range parts {
		if n := utf8.RuneCountInString(p); n > MaxMessageRunes || n < MaxMessageRunes/2 && i < len(parts)-1 {
			t.Errorf("part %d has %d runes", i, n)
		}
		if i > 0 && p != strings.TrimLeft(p, " \n") || i < len(parts)-1 && p != strings.TrimRight(p, " \n") {
			t.Errorf("part %d has whitespace at a cut: %q…%q", i, p[:10], p[len(p)-10:])
		}
		words += len(strings.Fields(p))
	}
	if want := len(strings.Fields(text)); words != want {
		t.Errorf("parts hold %d words, text %d: something was lost or cut mid-word", words, want)
	}
}
