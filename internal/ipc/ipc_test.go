package ipc

import (
	"encoding/json"
	"strings"
	"testing"
)

// R15: every field of an Output is capped; a value at its cap passes, one
// byte (or one unit) more is refused with the field named.
func TestOutputValidateCaps(t *testing.T) {
	valid := func() Output {
		return Output{InputID: "p1", Result: "ok", SessionID: "0b5e-11", Usage: Usage{InputTokens: 1, OutputTokens: 2}, DurationMS: 3}
	}
	for _, tc := range []struct {
		name string
		edit func(*Output)
		want string // "" means valid
	}{
		{"valid", func(o *Output) {}, ""},
		{"input id at its cap", func(o *Output) { o.InputID = strings.Repeat("p", 64) }, ""},
		{"input id too long", func(o *Output) { o.InputID = strings.Repeat("p", 65) }, "is not a prompt id"},
		{"session id at its cap", func(o *Output) { o.SessionID = strings.Repeat("s", 128) }, ""},
		{"session id too long", func(o *Output) { o.SessionID = strings.Repeat("s", 129) }, "session id"},
		{"result at its cap", func(o *Output) { o.Result = strings.Repeat("r", MaxResultBytes) }, ""},
		{"result too long", func(o *Output) { o.Result = strings.Repeat("r", MaxResultBytes+1) }, "result must be UTF-8 of at most 1048576 bytes (got 1048577 bytes)"},
		{"result not UTF-8", func(o *Output) { o.Result = "caf\xe9" }, "result must be UTF-8"},
		{"error at its cap", func(o *Output) { o.IsError, o.Error = true, strings.Repeat("e", MaxErrorBytes) }, ""},
		{"error too long", func(o *Output) { o.IsError, o.Error = true, strings.Repeat("e", MaxErrorBytes+1) }, "error must be UTF-8 of at most 65536 bytes (got 65537 bytes)"},
		{"error not UTF-8", func(o *Output) { o.Error = "\xff" }, "error must be UTF-8"},
		{"tokens at their cap", func(o *Output) { o.Usage = Usage{MaxTurnTokens, MaxTurnTokens} }, ""},
		{"input tokens over", func(o *Output) { o.Usage.InputTokens = MaxTurnTokens + 1 }, "tokens is over the limit"},
		{"output tokens over", func(o *Output) { o.Usage.OutputTokens = 1 << 62 }, "tokens is over the limit"},
		{"negative tokens", func(o *Output) { o.Usage.OutputTokens = -1 }, "negative usage"},
		{"duration at its cap", func(o *Output) { o.DurationMS = MaxTurnDurationMS }, ""},
		{"duration over", func(o *Output) { o.DurationMS = MaxTurnDurationMS + 1 }, "duration of 604800001 ms is over the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := valid()
			tc.edit(&o)
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}

// Any Output that validates fits the body limit, however its text escapes
// as JSON: the agent can always send what the host accepts.
func TestOutputAtItsCapsFitsTheBody(t *testing.T) {
	o := Output{InputID: strings.Repeat("p", 64), SessionID: strings.Repeat("s", 128), IsError: true,
		Result: strings.Repeat("\x01", MaxResultBytes), Error: strings.Repeat("<", MaxErrorBytes),
		Usage: Usage{MaxTurnTokens, MaxTurnTokens}, DurationMS: MaxTurnDurationMS}
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxOutputBytes {
		t.Fatalf("an Output at its caps encodes to %d bytes, over MaxOutputBytes %d", len(b), MaxOutputBytes)
	}
}
