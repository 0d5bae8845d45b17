package telegram

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/channel/telegram/faketelegram"
)

func TestMarkdownToHTML(t *testing.T) {
	cases := []struct{ md, html string }{
		{"plain", "plain"},
		{"a & b < c > d \"q\"", "a &amp; b &lt; c &gt; d &quot;q&quot;"},
		{"**bold** and __bold__", "<b>bold</b> and <b>bold</b>"},
		{"*it* and _it_", "<i>it</i> and <i>it</i>"},
		{"**bold *both* bold**", "<b>bold <i>both</i> bold</b>"},
		{"snake_case_name and 2*3*4", "snake_case_name and 2*3*4"},
		{"* a list item\n* another", "* a list item\n* another"},
		{"a ** b ** c", "a ** b ** c"},
		{"**unclosed", "**unclosed"},
		{"`x < y` and ``a ` b``", "<code>x &lt; y</code> and <code>a ` b</code>"},
		{"**`code` in bold**", "<b>`code` in bold</b>"},
		{"```go\nif a < b {\n}\n```\nafter", "<pre><code class=\"language-go\">if a &lt; b {\n}</code></pre>\nafter"},
		{"```\nplain block\n```", "<pre><code>plain block</code></pre>"},
		{"```weird\"lang\nx\n```", "<pre><code>x</code></pre>"},
		{"```\nunclosed\nblock", "<pre><code>unclosed\nblock</code></pre>"},
		{"```inline```", "<code>inline</code>"},
		{"[site](https://example.com/a?b=1&c=2)", `<a href="https://example.com/a?b=1&amp;c=2">site</a>`},
		{"[**bold** link](http://x.io)", `<a href="http://x.io"><b>bold</b> link</a>`},
		{"[x](javascript:alert(1))", "[x](javascript:alert(1))"},
		{"[x](file:///etc/passwd)", "[x](file:///etc/passwd)"},
		{`[x](https://a.io/"onclick=")`, `[x](https://a.io/&quot;onclick=&quot;)`},
		{"[x](https://user:pw@a.io)", "[x](https://user:pw@a.io)"},
		{"[[x](https://a.io)](https://b.io)", `[<a href="https://a.io">x</a>](https://b.io)`},
		{"# Title\n## Sub *it*", "<b>Title</b>\n<b>Sub <i>it</i></b>"},
		{"#hashtag", "#hashtag"},
		{`\*not italic\*`, "*not italic*"},
		{"<b>not a tag</b>", "&lt;b&gt;not a tag&lt;/b&gt;"},
		{"> a quote\n| a | table |", "&gt; a quote\n| a | table |"},
	}
	for _, c := range cases {
		got, shown := MarkdownToHTML(c.md)
		if got != c.html || !shown {
			t.Errorf("MarkdownToHTML(%q)\n = %q, %v\nwant %q", c.md, got, shown, c.html)
		}
		if _, err := faketelegram.ParseHTML(got); err != nil {
			t.Errorf("MarkdownToHTML(%q) = %q, which Telegram refuses: %v", c.md, got, err)
		}
	}
	for _, empty := range []string{"", "   \n", "```\n```", "```\n   \n```"} {
		if html, shown := MarkdownToHTML(empty); shown {
			t.Errorf("MarkdownToHTML(%q) = %q shows something", empty, html)
		}
	}
}

// Whatever the model writes, the HTML is one Telegram takes, and shows
// the text's words.
func FuzzMarkdownToHTML(f *testing.F) {
	for _, s := range []string{"**a *b* c**", "`x`", "```go\nx\n```", "[a](https://b.c)", "_a_b_", "# h", "&<>\"",
		"**`a`**", "[*a*](http://x)", "*[a](http://x)*", "``` x\n", "***a***", "\\*a\\*", "[a](http://x)(y)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, md string) {
		if !utf8.ValidString(md) {
			md = strings.ToValidUTF8(md, "\uFFFD")
		}
		html, shown := MarkdownToHTML(md)
		text, err := faketelegram.ParseHTML(html)
		if err != nil {
			t.Fatalf("MarkdownToHTML(%q) = %q: %v", md, html, err)
		}
		if shown != (strings.TrimSpace(text) != "") {
			t.Fatalf("MarkdownToHTML(%q) shown = %v for text %q", md, shown, text)
		}
		if units(text) > units(md) {
			t.Fatalf("MarkdownToHTML(%q) shows %q, longer than the text", md, text)
		}
	})
}

func TestSplitText(t *testing.T) {
	emoji := strings.Repeat("😀", 3000) // 6000 units
	cases := []struct {
		name string
		text string
		max  int
		want []string
	}{
		{"fits", "short", 10, []string{"short"}},
		{"blank", " \n ", 10, nil},
		{"paragraph", "aaaa bbbb\n\ncccc", 12, []string{"aaaa bbbb", "cccc"}},
		{"line", "aaaaaaa\nbbbb cccc", 12, []string{"aaaaaaa", "bbbb cccc"}},
		{"line too early", "aaaa\nbbbb cccc", 12, []string{"aaaa\nbbbb", "cccc"}},
		{"word", "aaaa bbbb cccc", 12, []string{"aaaa bbbb", "cccc"}},
		{"hard", "abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"paragraph too early", "a\n\nbbbbbbbbb cc", 12, []string{"a\n\nbbbbbbbbb", "cc"}},
	}
	for _, c := range cases {
		got := SplitText(c.text, c.max)
		if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
			t.Errorf("%s: SplitText(%q, %d) = %q, want %q", c.name, c.text, c.max, got, c.want)
		}
	}
	parts := SplitText(emoji, MaxMessageUnits)
	if len(parts) != 2 || units(parts[0]) != MaxMessageUnits || strings.Join(parts, "") != emoji {
		t.Errorf("emoji split into %d parts of %d units", len(parts), units(parts[0]))
	}
	if p := SplitText("ab\u0301cd", 2); len(p) != 3 || p[0] != "a" || p[1] != "b\u0301" {
		t.Errorf("a combining accent was cut from its letter: %q", p)
	}
}

func TestReopenFences(t *testing.T) {
	got := reopenFences([]string{"text\n```go\na", "b\n```\nafter", "more"})
	want := []string{"text\n```go\na\n```", "```\nb\n```\nafter", "more"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("reopenFences = %q, want %q", got, want)
	}
}
