package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// SECURITY.md names a test for every claim; each must exist where it says,
// so the table cannot drift from the tests that prove it.
func TestSecurityDocNamesRealTests(t *testing.T) {
	root := moduleRoot(t)
	doc, err := os.ReadFile(filepath.Join(root, "SECURITY.md"))
	if err != nil {
		t.Fatal(err)
	}
	// `pkg.TestName` or `pkg.FuzzName`; pkg is the last element of a
	// directory under internal/, cmd/ or the top (container).
	refs := regexp.MustCompile("`([a-z/-]+)\\.((?:Test|Fuzz)[A-Za-z0-9_]+)`").FindAllStringSubmatch(string(doc), -1)
	if len(refs) < 40 {
		t.Fatalf("SECURITY.md names only %d tests", len(refs))
	}
	for _, ref := range refs {
		pkg, name := ref[1], ref[2]
		dir := ""
		for _, cand := range []string{filepath.Join(root, "internal", pkg), filepath.Join(root, pkg), filepath.Join(root, "internal", "channel", pkg)} {
			if st, err := os.Stat(cand); err == nil && st.IsDir() {
				dir = cand
				break
			}
		}
		if dir == "" {
			t.Errorf("SECURITY.md: no package %s for %s", pkg, name)
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		found := false
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if strings.Contains(string(b), "func "+name+"(") {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("SECURITY.md names %s.%s, which does not exist", pkg, name)
		}
	}
}
