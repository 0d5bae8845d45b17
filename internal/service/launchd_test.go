package service

import (
	"encoding/xml"
	"reflect"
	"strings"
	"testing"
)

func TestPlistString(t *testing.T) {
	cases := []struct{ in, want, errHas string }{
		{"/Users/alice/bin/nanoclaw", "/Users/alice/bin/nanoclaw", ""},
		{"a <b> & c", "a &lt;b&gt; &amp; c", ""},
		{`say "hi" it's`, "say &#34;hi&#34; it&#39;s", ""},
		{`100% $HOME \n`, `100% $HOME \n`, ""},
		{"]]> -->", "]]&gt; --&gt;", ""},
		{"café", "café", ""},
		{"line\nbreak", "", "control character"},
		{"bell\a", "", "control character"},
		{"\xfe", "", "not valid UTF-8"},
	}
	for _, tc := range cases {
		got, err := plistString(tc.in)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("plistString(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.errHas)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("plistString(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestRenderPlist(t *testing.T) {
	u := Unit{Exe: "/Users/alice/bin/nanoclaw", HomeDir: "/Users/alice", DataHome: "/Users/alice/.nanoclaw", ConfigDir: "/Users/alice/.config/nanoclaw",
		Path: "/opt/homebrew/bin:/usr/bin:/bin", LogsDir: "/Users/alice/.nanoclaw/logs"}
	got, err := renderPlist(u)
	want := `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<!-- Written by nanoclaw service install: it replaces or removes this file
     only while this line is in it. Change the agent by reinstalling it
     (nanoclaw service install), remove it with nanoclaw service uninstall. -->
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>com.nanoclaw</string>
	<key>ProgramArguments</key>
	<array>
		<string>/Users/alice/bin/nanoclaw</string>
		<string>run</string>
	</array>
	<key>EnvironmentVariables</key>
	<dict>
		<key>HOME</key>
		<string>/Users/alice</string>
		<key>NANOCLAW_HOME</key>
		<string>/Users/alice/.nanoclaw</string>
		<key>NANOCLAW_CONFIG_DIR</key>
		<string>/Users/alice/.config/nanoclaw</string>
		<key>PATH</key>
		<string>/opt/homebrew/bin:/usr/bin:/bin</string>
	</dict>
	<key>RunAtLoad</key>
	<true/>
	<!-- Restart after a failure, not after a clean stop; launchd waits
	     ThrottleInterval seconds between starts, and never gives up. -->
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
	<key>ThrottleInterval</key>
	<integer>5</integer>
	<!-- Time for the daemon's own graceful stop (30 s) before SIGKILL. -->
	<key>ExitTimeOut</key>
	<integer>45</integer>
	<!-- 077, in decimal as launchd reads it. -->
	<key>Umask</key>
	<integer>63</integer>
	<key>StandardOutPath</key>
	<string>/Users/alice/.nanoclaw/logs/service.log</string>
	<key>StandardErrorPath</key>
	<string>/Users/alice/.nanoclaw/logs/service.log</string>
</dict>
</plist>
`
	if err != nil || string(got) != want {
		t.Errorf("plist: %v\n%s\nwant\n%s", err, got, want)
	}
}

// plistNode is a plist element as encoding/xml reads it back.
type plistNode struct {
	XMLName xml.Name
	Text    string      `xml:",chardata"`
	Nodes   []plistNode `xml:",any"`
}

// A plist with XML's special characters in every value is well-formed,
// and an XML reader gets each value back exactly.
func TestPlistRoundTrip(t *testing.T) {
	odd := `/Users/a <b> & "c" 'd' ]]> -->`
	u := Unit{Exe: odd + "/nanoclaw", HomeDir: odd, DataHome: odd + "/data", ConfigDir: odd + "/conf", Path: odd + ":/usr/bin", LogsDir: odd + "/data/logs"}
	data, err := renderPlist(u)
	if err != nil {
		t.Fatal(err)
	}
	var root plistNode
	d := xml.NewDecoder(strings.NewReader(string(data)))
	d.Strict = true
	if err := d.Decode(&root); err != nil {
		t.Fatalf("the plist is not well-formed XML: %v\n%s", err, data)
	}
	var values []string // every <string>, in document order
	var walk func(n plistNode)
	walk = func(n plistNode) {
		if n.XMLName.Local == "string" {
			values = append(values, n.Text)
		}
		for _, c := range n.Nodes {
			walk(c)
		}
	}
	walk(root)
	want := []string{Label, u.Exe, "run", u.HomeDir, u.DataHome, u.ConfigDir, u.Path, u.LogsDir + "/service.log", u.LogsDir + "/service.log"}
	if !reflect.DeepEqual(values, want) {
		t.Errorf("read back\n%q\nwant\n%q", values, want)
	}
}
