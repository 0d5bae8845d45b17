package ipc

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeStrict(t *testing.T) {
	type body struct {
		Text string `json:"text"`
		Wait bool   `json:"wait"`
	}
	cases := []struct {
		name string
		in   string
		v    any
		want string // "" means accepted
	}{
		{"object", ` {"text":"hi"} `, &body{}, ""},
		{"map", `{"a":1}`, &map[string]json.RawMessage{}, ""},
		{"list", `[{"text":"hi"}]`, &[]body{}, ""},
		{"raw value", `"hi"`, &json.RawMessage{}, ""},
		{"unknown field", `{"text":"hi","chat":"x"}`, &body{}, `invalid JSON: json: unknown field "chat"`},
		{"wrong type", `{"wait":"yes"}`, &body{}, `invalid JSON: field "wait": want a JSON bool, got string: json: cannot unmarshal`},
		{"truncated", `{"text":`, &body{}, "invalid JSON"},
		{"empty", ``, &body{}, "not a JSON object"},
		{"null", `null`, &body{}, "not a JSON object"},
		{"list for an object", `["hi"]`, &body{}, "not a JSON object"},
		{"object for a list", `{}`, &[]body{}, "not a JSON list"},
		{"trailing object", `{"text":"hi"} {}`, &body{}, "trailing data after the JSON object"},
		{"trailing garbage", `[]x`, &[]body{}, "trailing data after the JSON list"},
		{"trailing after a value", `1 2`, new(int), "trailing data after the JSON value"},
	}
	for _, tc := range cases {
		err := DecodeStrict([]byte(tc.in), tc.v)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteJSON(rec, http.StatusTeapot, ToolResponse{Error: "a <b> & c"})
	if rec.Code != http.StatusTeapot || rec.Header().Get("Content-Type") != "application/json" || rec.Header().Get("Cache-Control") != "no-store" ||
		rec.Body.String() != `{"error":"a <b> & c"}` {
		t.Errorf("WriteJSON: %d %v %q", rec.Code, rec.Header(), rec.Body)
	}
	rec = httptest.NewRecorder()
	WriteJSON(rec, http.StatusOK, ToolResponse{Result: json.RawMessage(`{`)})
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "cannot encode the answer") {
		t.Errorf("an unencodable answer: %d %q", rec.Code, rec.Body)
	}
}
