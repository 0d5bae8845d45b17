package config

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSetFileValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conf", "config")
	if err := SetFileValues(path, map[string]string{"ANTHROPIC_API_KEY": "sk-ant-one"}); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("new file: %v, %v", info, err)
	}
	os.WriteFile(path, []byte("# mine\nASSISTANT_NAME=Andy\nexport ANTHROPIC_API_KEY='sk-ant-one'\nIDLE_TIMEOUT=10s"), 0o644)
	if err := SetFileValues(path, map[string]string{"ANTHROPIC_API_KEY": "sk-ant-two", "CLAUDE_CODE_OAUTH_TOKEN": "tok"}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	want := "# mine\nASSISTANT_NAME=Andy\nANTHROPIC_API_KEY=sk-ant-two\nIDLE_TIMEOUT=10s\nCLAUDE_CODE_OAUTH_TOKEN=tok\n"
	if string(data) != want {
		t.Errorf("file:\n%s\nwant:\n%s", data, want)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after rewrite", info.Mode())
	}
	vals, err := parseEnvFile(path, data)
	if err != nil || vals["ANTHROPIC_API_KEY"] != "sk-ant-two" || vals["ASSISTANT_NAME"] != "Andy" {
		t.Errorf("reads back as %v, %v", vals, err)
	}
	for _, bad := range []string{"a\nIDLE_TIMEOUT=0", " spaced", `"quoted"`} {
		if err := SetFileValues(path, map[string]string{"ANTHROPIC_API_KEY": bad}); err == nil {
			t.Errorf("value %q accepted", bad)
		}
	}
	os.WriteFile(path, []byte("not a setting\n"), 0o600)
	if err := SetFileValues(path, map[string]string{"X": "y"}); err == nil {
		t.Error("a file that does not parse was rewritten")
	}
	loose := filepath.Join(t.TempDir(), "loose")
	os.Mkdir(loose, 0o777)
	os.Chmod(loose, 0o777)
	if err := SetFileValues(filepath.Join(loose, "config"), map[string]string{"X": "y"}); err == nil {
		t.Error("a secret was written into a directory others may write to")
	}
}
