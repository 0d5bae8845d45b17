package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/color"
	pngenc "image/png"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/fakeapi"
	"github.com/nanoclaw/nanoclaw/internal/transcribe/faketranscribe"
)

// mediaPathRE finds an attachment's path in a prompt's messages (after
// "<messages>": the CLAUDE.md templates show an example).
var mediaPathRE = regexp.MustCompile(`(?s)<messages>.*path="(/workspace/group/media/[A-Za-z0-9_-][A-Za-z0-9._-]*)"`)

// testPNG is a real 32×32 picture.
func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for x := range 32 {
		for y := range 32 {
			img.Set(x, y, color.RGBA{uint8(8 * x), uint8(8 * y), 200, 255})
		}
	}
	var b bytes.Buffer
	if err := pngenc.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// oggOpus is the start of an Ogg stream whose first packet is Opus's
// header: what a chat app's voice note is.
func oggOpus() []byte {
	page := append([]byte("OggS\x00\x02"), make([]byte, 20)...)
	page = append(page, 1, 19) // one segment of 19 bytes
	return append(append(page, []byte("OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00")...), bytes.Repeat([]byte{0x4f}, 200)...)
}

// Through the real daemon, Claude Code and the fake model: a photo sent
// with `send --file` reaches the model as the image of a Read tool result;
// the agent's send_file of it comes back to `send --wait`, saved into
// --save-dir; its send_file of a link out of its folder is refused; and a
// voice note is transcribed by the transcription endpoint, its transcript
// reaching the model as the message.
func TestMediaEndToEnd(t *testing.T) {
	for _, rt := range []string{"podman", "docker"} {
		t.Run(rt, func(t *testing.T) { testMedia(t, rt) })
	}
}

func testMedia(t *testing.T, rt string) {
	tr := faketranscribe.New()
	defer tr.Close()
	tr.RequireKey("tr-test-key")
	tr.Script(faketranscribe.Text("remind me to water the plants"))
	w := newWorld(t, rt, "TRANSCRIBE_URL="+tr.URL(), "TRANSCRIBE_API_KEY=tr-test-key")
	w.start()
	defer w.stop()

	pic := testPNG(t)
	dir := t.TempDir()
	photo := filepath.Join(dir, "cat.png")
	if err := os.WriteFile(photo, pic, 0o600); err != nil {
		t.Fatal(err)
	}
	var seen string // the photo's path in the container, as the prompt gave it
	lastResult := func(r *fakeapi.Request) fakeapi.ToolResult {
		if res := r.ToolResults(); len(res) == 1 {
			return res[0]
		}
		return fakeapi.ToolResult{IsError: true, Content: "no tool result"}
	}
	w.fake.Script(
		fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
			m := mediaPathRE.FindStringSubmatch(r.LastUserText())
			if m == nil {
				return fakeapi.Text("NO ATTACHMENT in " + r.LastUserText())
			}
			seen = m[1]
			return fakeapi.ToolUse("Read", map[string]any{"file_path": seen})
		}),
		fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
			res := lastResult(r)
			for _, m := range res.Media {
				if data, err := base64.StdEncoding.DecodeString(m.Data); err == nil && m.MediaType == "image/png" && len(data) > 0 {
					return fakeapi.ToolUse("mcp__nanoclaw__send_file", map[string]any{"path": seen, "caption": "your cat"})
				}
			}
			return fakeapi.Text("NO IMAGE in the Read result of " + seen + ": " + res.Content)
		}),
		fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
			if res := lastResult(r); res.IsError || !strings.Contains(res.Content, "true") {
				return fakeapi.Text("SEND FAILED: " + res.Content)
			}
			return fakeapi.ToolUse("Bash", map[string]any{"command": "ln -s /etc/passwd /workspace/group/leak && echo linked"})
		}),
		fakeapi.ToolUse("mcp__nanoclaw__send_file", map[string]any{"path": "/workspace/group/leak"}),
		fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
			if res := lastResult(r); res.IsError && strings.Contains(res.Content, "link") {
				return fakeapi.Text("SAW THE CAT; LINK REFUSED")
			}
			return fakeapi.Text("THE LINK WAS SENT: " + lastResult(r).Content)
		}),
	)
	save := t.TempDir()
	out, errOut, code := w.nanoclaw("send", "--wait", "--save-dir", save, "--file", photo, "what is this?")
	if code != 0 || !strings.Contains(out, "Andy: SAW THE CAT; LINK REFUSED") {
		t.Fatalf("send --file --wait: exit %d\nstdout: %s\nstderr: %s\nmodel:\n%s", code, out, errOut, w.fake.Summary())
	}
	saved, _ := filepath.Glob(filepath.Join(save, "*"))
	if len(saved) != 1 || !strings.Contains(out, "saved as "+saved[0]) {
		t.Fatalf("files saved: %v\nstdout: %s", saved, out)
	}
	if got, err := os.ReadFile(saved[0]); err != nil || !bytes.Equal(got, pic) {
		t.Errorf("the file sent back differs from the photo (%d bytes, %v)", len(got), err)
	}
	if !strings.Contains(out, "your cat") {
		t.Errorf("the caption is missing:\n%s", out)
	}
	// Nothing of /etc/passwd left the host's own files or reached the chat.
	passwd, _ := os.ReadFile("/etc/passwd")
	for _, d := range []string{filepath.Join(w.home, ".nanoclaw", "outbox"), filepath.Join(w.home, ".nanoclaw", "local", "files"), save} {
		filepath.WalkDir(d, func(p string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, passwd[:min(len(passwd), 64)]) {
					t.Errorf("%s holds /etc/passwd", p)
				}
			}
			return nil
		})
	}

	// A voice note: transcribed on the host, the transcript is the message.
	note := filepath.Join(dir, "note.ogg")
	os.WriteFile(note, oggOpus(), 0o600)
	w.fake.Script(fakeapi.React(func(r *fakeapi.Request) fakeapi.Turn {
		text := r.LastUserText()
		if strings.Contains(text, `transcript="true">remind me to water the plants<attachment kind="voice"`) {
			return fakeapi.Text("HEARD THE VOICE NOTE")
		}
		return fakeapi.Text("NO TRANSCRIPT in " + text)
	}))
	out, errOut, code = w.nanoclaw("send", "--wait", "--file", note)
	if code != 0 || !strings.Contains(out, "Andy: HEARD THE VOICE NOTE") {
		t.Fatalf("voice note: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Wait(ctx, 1); err != nil {
		t.Fatal(err)
	}
	req := tr.Requests()[0]
	if req.Model() != "whisper-1" || !bytes.Equal(req.Audio, oggOpus()) || req.Problem != "" {
		t.Errorf("the transcription request: model %q, %d bytes of audio, problem %q", req.Model(), len(req.Audio), req.Problem)
	}
}
