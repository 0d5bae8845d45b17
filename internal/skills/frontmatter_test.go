package skills

import (
	"strings"
	"testing"
)

func TestParseFrontMatter(t *testing.T) {
	cases := []struct {
		in, name, description, err string
	}{
		{"---\nname: a\ndescription: Does a\n---\nbody", "a", "Does a", ""},
		{"---\r\ndescription: 'CRLF and quotes'\r\n---\r\n", "", "CRLF and quotes", ""},
		{"\uFEFF---\ndescription: \"with BOM\"\n---\n", "", "with BOM", ""},
		{"---\ndescription: >\n  folded\n  lines\nname: b\n---\n", "b", "folded lines", ""},
		{"---\ndescription: |-\n\tliteral\n\n  kept: as text\n---\n", "", "literal kept: as text", ""},
		{"---\ndescription: starts here\n  and goes on\n---\n", "", "starts here and goes on", ""},
		{"---\n# a comment\nallowed-tools:\n  - Bash\n  - Read\nlicense: MIT\ndescription: Use when: asked\n---\n", "", "Use when: asked", ""},
		{"---\ndescription: x\n", "", "", `its front matter has no closing "---" line`},
		{"description: x\n---\n", "", "", `it does not start with a front matter line "---"`},
		{"", "", "", `it does not start with a front matter line "---"`},
		{"---\nname: a\n---\n", "", "", "its front matter has no description"},
		{"---\ndescription: >\n---\n", "", "", "its front matter has no description"},
		{"---\ndescription: a\ndescription: b\n---\n", "", "", `the front matter has "description" twice: keep one`},
		{"---\ndescription: a\njust prose\n---\n", "", "", `line 3 of the front matter is not "key: value"`},
		{"---\ndescription: a\n: no key\n---\n", "", "", `line 3 of the front matter is not "key: value"`},
	}
	for _, c := range cases {
		fm, err := parseFrontMatter([]byte(c.in))
		if c.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), c.err) {
				t.Errorf("%q: err = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || fm.name != c.name || fm.description != c.description {
			t.Errorf("%q: got %+v, %v; want name %q description %q", c.in, fm, err, c.name, c.description)
		}
	}
}

// FuzzParseFrontMatter: no input panics, and a success always has a
// description.
func FuzzParseFrontMatter(f *testing.F) {
	for _, seed := range []string{
		"---\nname: a\ndescription: Does a\n---\nbody",
		"---\ndescription: >\n  folded\n  lines\n---\n",
		"---\r\ndescription: '\x00'\r\n---",
		"---\n---\n",
		"---\ndescription: |\n",
		"---\n\t\n :\n---",
		"\uFEFF---\ndescription: \"\n---",
		"",
		"---",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fm, err := parseFrontMatter(data)
		if err == nil && strings.TrimSpace(fm.description) == "" {
			t.Fatalf("%q: accepted without a description", data)
		}
		if err == nil && strings.ContainsAny(fm.description+fm.name, "\n") {
			t.Fatalf("%q: a value spans lines: %+v", data, fm)
		}
	})
}
