package ipc

import (
	"strings"
	"testing"
)

func TestSendFileArgsValidate(t *testing.T) {
	cases := []struct {
		args SendFileArgs
		want string // in the error; "" for none
	}{
		{SendFileArgs{Path: "report.pdf"}, ""},
		{SendFileArgs{Path: "/workspace/group/media/a.jpg", Caption: "the photo"}, ""},
		{SendFileArgs{Path: strings.Repeat("a", MaxFilePathBytes)}, ""},
		{SendFileArgs{Path: " \t"}, "path is empty"},
		{SendFileArgs{Path: strings.Repeat("a", MaxFilePathBytes+1)}, "at most 4096 bytes"},
		{SendFileArgs{Path: "a\x00b"}, "without NUL"},
		{SendFileArgs{Path: "a\xffb"}, "UTF-8"},
		{SendFileArgs{Path: "a", Caption: strings.Repeat("c", MaxMessageBytes+1)}, "caption"},
		{SendFileArgs{Path: "a", Caption: "\xff"}, "caption"},
	}
	for _, c := range cases {
		err := c.args.Validate()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Validate(%.40q, caption %.20q): %v, want %q", c.args.Path, c.args.Caption, err, c.want)
		}
	}
	if spec, ok := LookupTool("send_file"); !ok || spec.Callers != Groups|Main || spec.Description == "" {
		t.Errorf("send_file: %+v, %v; want a described tool for the groups and main", spec, ok)
	}
}
