package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// JSON output escapes the C1 controls too, and still decodes to the text.
func TestWriteJSONEscapesC1(t *testing.T) {
	var b strings.Builder
	in := map[string]string{"detail": "a\u009b31mred\x1b[0m é"}
	if err := writeJSON(&b, in); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(b.String(), "\u009b\x1b") {
		t.Errorf("raw control in %q", b.String())
	}
	var back map[string]string
	if err := json.Unmarshal([]byte(b.String()), &back); err != nil || back["detail"] != in["detail"] {
		t.Errorf("round trip: %q, %v", back, err)
	}
}
