package templates

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteMemoryKeepsEdits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "family")
	if err := WriteMemory(dir, Group, "Jarvis", "@Jarvis"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "CLAUDE.md"))
	if !strings.Contains(string(got), "You are Jarvis") || !strings.Contains(string(got), "starts\nwith @Jarvis") || strings.Contains(string(got), "{{") {
		t.Errorf("rendered template:\n%s", got)
	}
	os.WriteFile(filepath.Join(dir, "CLAUDE.md"), []byte("edited"), 0o644)
	if err := WriteMemory(dir, Group, "Jarvis", "@Jarvis"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "CLAUDE.md")); string(got) != "edited" {
		t.Errorf("an edited CLAUDE.md was overwritten: %q", got)
	}
}

func TestTemplatesTeachTheTools(t *testing.T) {
	for _, k := range []Kind{Main, Group} {
		s := Render(k, "Andy", "@Andy")
		for _, want := range []string{"send_message", "Scheduled tasks", "WhatsApp"} {
			if !strings.Contains(s, want) {
				t.Errorf("template %d does not mention %q", k, want)
			}
		}
	}
}
