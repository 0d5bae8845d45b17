package transcribe

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/transcribe/faketranscribe"
)

const testKey = "sk-test-0123456789abcdef"

// voiceNote stands in for a WhatsApp voice note's bytes.
var voiceNote = []byte("OggS\x00\x02fake opus audio")

// newClient is a Client of the fake at its endpoint, with the test key.
func newClient(t *testing.T, fake *faketranscribe.Server, opt Options) *Client {
	t.Helper()
	u, err := url.Parse(fake.URL())
	if err != nil {
		t.Fatal(err)
	}
	opt.URL = u
	if opt.APIKey == "" {
		opt.APIKey = testKey
	}
	return New(opt)
}

func newFake(t *testing.T) *faketranscribe.Server {
	fake := faketranscribe.New()
	t.Cleanup(fake.Close)
	fake.RequireKey(testKey)
	return fake
}

func TestTranscribeSendsTheFormAndReturnsTheTranscript(t *testing.T) {
	fake := newFake(t)
	fake.Script(faketranscribe.Text("  @Andy what's for dinner?\n"))
	c := newClient(t, fake, Options{Model: "whisper-large-v3"})

	got, err := c.Transcribe(t.Context(), strings.NewReader(string(voiceNote)), "3EB0C431C2B4.ogg", "audio/ogg; codecs=opus")
	if err != nil {
		t.Fatal(err)
	}
	if got != "@Andy what's for dinner?" {
		t.Errorf("transcript %q, want the fake's, trimmed", got)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1:\n%+v", len(reqs), reqs)
	}
	r := reqs[0]
	for what, pair := range map[string][2]string{
		"problem":         {r.Problem, ""},
		"model":           {r.Model(), "whisper-large-v3"},
		"response_format": {r.Fields["response_format"], "json"},
		"file name":       {r.FileName, "3EB0C431C2B4.ogg"},
		"content type":    {r.FileType, "audio/ogg; codecs=opus"},
		"audio":           {string(r.Audio), string(voiceNote)},
		"authorization":   {r.Header.Get("Authorization"), "Bearer " + testKey},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s %q, want %q", what, pair[0], pair[1])
		}
	}
	if r.ContentLength <= int64(len(voiceNote)) {
		t.Errorf("Content-Length %d, want the body's length: some servers refuse chunked uploads", r.ContentLength)
	}
}

func TestTranscribeDefaultsAndNoKey(t *testing.T) {
	fake := faketranscribe.New()
	t.Cleanup(fake.Close)
	u, _ := url.Parse(fake.URL())
	c := New(Options{URL: u}) // a local server without keys

	if _, err := c.Transcribe(t.Context(), strings.NewReader("audio"), "", "audio/mpeg"); err != nil {
		t.Fatal(err)
	}
	r := fake.Requests()[0]
	if r.Model() != DefaultModel || r.Header.Get("Authorization") != "" || r.FileName != "audio.mp3" {
		t.Errorf("model %q, authorization %q, file name %q; want %q, none, audio.mp3 (the name made from the type)",
			r.Model(), r.Header.Get("Authorization"), r.FileName, DefaultModel)
	}
}

func TestPartName(t *testing.T) {
	for _, tc := range []struct{ name, ctype, want string }{
		{"voice.ogg", "audio/ogg", "voice.ogg"},
		{"../../etc/passwd", "audio/ogg", "passwd"},
		{`C:\Users\me\note.m4a`, "audio/mp4", "note.m4a"},
		{"a\"b\r\nX-Evil: 1.ogg", "audio/ogg", "abX-Evil1.ogg"},
		{"sprachnachricht ü.opus", "audio/ogg", "sprachnachricht.opus"},
		{"", "audio/ogg; codecs=opus", "audio.ogg"},
		{"..", "audio/wav", "audio.wav"},
		{"", "application/octet-stream", "audio"},
		{strings.Repeat("x", 300) + ".ogg", "audio/ogg", strings.Repeat("x", maxNameBytes-4) + ".ogg"},
	} {
		if got := partName(tc.name, tc.ctype); got != tc.want {
			t.Errorf("partName(%q, %q) = %q, want %q", tc.name, tc.ctype, got, tc.want)
		}
	}
}

func TestContentType(t *testing.T) {
	for in, want := range map[string]string{
		"audio/ogg; codecs=opus":      "audio/ogg; codecs=opus",
		"AUDIO/MPEG":                  "audio/mpeg",
		"":                            "application/octet-stream",
		"audio/ogg\r\nX-Evil: 1":      "application/octet-stream",
		"not a type":                  "application/octet-stream",
		`audio/ogg; name="a\"b"`:      `audio/ogg; name="a\"b"`,
		"audio/ogg; codecs=opus; x=;": "application/octet-stream",
	} {
		if got := contentType(in); got != want {
			t.Errorf("contentType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTranscriptIsCleaned(t *testing.T) {
	for _, tc := range []struct {
		reply faketranscribe.Reply
		want  string
	}{
		{faketranscribe.Text("hello\x1b[31m red\x1b[0m\r\nline\x00two\u202eevil\x07 end\ttab"), "hello red\nlinetwoevil end\ttab"},
		{faketranscribe.Reply{Body: []byte("{\"text\":\"bad \xff byte\"}")}, "bad \uFFFD byte"},
		{faketranscribe.Text(" \n "), ""}, // silence
		{faketranscribe.Text(strings.Repeat("é", MaxTranscriptBytes)), strings.Repeat("é", (MaxTranscriptBytes-len("…"))/2) + "…"},
	} {
		fake := newFake(t)
		fake.Script(tc.reply)
		got, err := newClient(t, fake, Options{}).Transcribe(t.Context(), strings.NewReader("audio"), "v.ogg", "audio/ogg")
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("transcript %.80q (%d bytes), want %.80q (%d bytes)", got, len(got), tc.want, len(tc.want))
		}
	}
}

func TestErrorStatusIsOneLineWithoutTheKey(t *testing.T) {
	for _, tc := range []struct {
		reply faketranscribe.Reply
		want  string
	}{
		{faketranscribe.Error(401, "Incorrect API key provided: "+testKey+".\nYou can find your key at …"), "check TRANSCRIBE_API_KEY"},
		{faketranscribe.Error(404, "The model `whisper-9` does not exist"), "check TRANSCRIBE_URL and TRANSCRIBE_MODEL"},
		{faketranscribe.Reply{Status: 500, Body: []byte("<html>\n<body>oops " + testKey + "\x1b]52;c;aGk=\x07</body>")}, "answered 500 (<html>)"},
		{faketranscribe.Error(429, strings.Repeat("slow down ", 100)), "answered 429 (slow down"},
		{faketranscribe.Reply{Status: 200, Body: []byte(`{"txt":"x"}`)}, "without a JSON text field"},
		{faketranscribe.Reply{Status: 200, Body: []byte(`plain text`)}, "without a JSON text field (plain text)"},
	} {
		fake := newFake(t)
		fake.Script(tc.reply)
		_, err := newClient(t, fake, Options{}).Transcribe(t.Context(), strings.NewReader("audio"), "v.ogg", "audio/ogg")
		if err == nil {
			t.Fatalf("%d %q: no error", tc.reply.Status, tc.reply.Body)
		}
		msg := err.Error()
		if strings.Contains(msg, testKey) || strings.ContainsAny(msg, "\n\r\x1b\x07") || len(msg) > 400 || !strings.Contains(msg, tc.want) {
			t.Errorf("error %q: want one line of at most 400 bytes with %q and without the key", msg, tc.want)
		}
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	elsewhere := newFake(t)
	fake := newFake(t)
	fake.Script(faketranscribe.Reply{Status: http.StatusTemporaryRedirect, Header: http.Header{"Location": {elsewhere.URL()}}})
	_, err := newClient(t, fake, Options{}).Transcribe(t.Context(), strings.NewReader("audio"), "v.ogg", "audio/ogg")
	if err == nil || !strings.Contains(err.Error(), "redirect, which is not followed") {
		t.Errorf("error %v, want the redirect refused", err)
	}
	if n := len(elsewhere.Requests()); n != 0 {
		t.Errorf("the redirect's target got %d requests, want none: the key went with them", n)
	}
}

func TestOversizeResponseIsRefused(t *testing.T) {
	big := `{"text":"` + strings.Repeat("a", maxResponseBytes) + `"}`
	for _, chunked := range []bool{false, true} {
		written := make(chan int, 1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !chunked {
				w.Write([]byte(big))
				return
			}
			// No Content-Length, and 64 MiB: a bounded read stops after
			// the first MiB and hangs up, long before the end.
			n, _ := w.Write([]byte(`{"text":"`))
			for n < 64<<20 {
				m, err := w.Write([]byte(strings.Repeat("a", 64<<10)))
				if n += m; err != nil {
					break
				}
			}
			written <- n
		}))
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL)
		got, err := New(Options{URL: u}).Transcribe(t.Context(), strings.NewReader("audio"), "v.ogg", "audio/ogg")
		if err == nil || !strings.Contains(err.Error(), "more than the 1048576 bytes read") {
			t.Errorf("chunked %v: transcript of %d bytes, error %v; want the answer refused", chunked, len(got), err)
		}
		if chunked {
			if n := <-written; n >= 32<<20 {
				t.Errorf("the endpoint could write %d bytes before the client hung up: the read is not bounded", n)
			}
		}
	}
}

func TestOversizeAudioIsNotSent(t *testing.T) {
	fake := newFake(t)
	c := newClient(t, fake, Options{MaxAudioBytes: 10})
	if _, err := c.Transcribe(t.Context(), strings.NewReader("12345678901"), "v.ogg", "audio/ogg"); err == nil || !strings.Contains(err.Error(), "larger than 10 bytes") {
		t.Errorf("error %v, want the audio refused", err)
	}
	if _, err := c.Transcribe(t.Context(), strings.NewReader(""), "v.ogg", "audio/ogg"); err == nil {
		t.Error("empty audio: no error")
	}
	if n := len(fake.Requests()); n != 0 {
		t.Errorf("%d requests, want none", n)
	}
	if _, err := c.Transcribe(t.Context(), strings.NewReader("1234567890"), "v.ogg", "audio/ogg"); err != nil {
		t.Errorf("audio of exactly the limit: %v", err)
	}
}

func TestTimeoutIsHonoured(t *testing.T) {
	fake := newFake(t)
	fake.Script(faketranscribe.Reply{Status: 200, Body: []byte(`{"text":"late"}`), Delay: time.Minute})
	c := newClient(t, fake, Options{Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := c.Transcribe(t.Context(), strings.NewReader("audio"), "v.ogg", "audio/ogg")
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Errorf("error %v, want no answer within 100ms", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %s, want about the timeout", d)
	}
}

func TestCallerCancelIsNotATimeout(t *testing.T) {
	fake := newFake(t)
	fake.Script(faketranscribe.Reply{Status: 200, Body: []byte(`{"text":"late"}`), Delay: time.Minute})
	c := newClient(t, fake, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := c.Transcribe(ctx, strings.NewReader("audio"), "v.ogg", "audio/ogg")
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "no answer within") {
		t.Errorf("error %v, want the caller's cancel", err)
	}
}

func TestUnreachableEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u, _ := url.Parse(srv.URL + "/v1/audio/transcriptions?api-key=" + testKey)
	srv.Close()
	_, err := New(Options{URL: u}).Transcribe(t.Context(), strings.NewReader("audio"), "v.ogg", "audio/ogg")
	if err == nil || !strings.Contains(err.Error(), "cannot reach the transcription endpoint "+u.Host) || strings.Contains(err.Error(), testKey) {
		t.Errorf("error %v, want the host named and the URL's query not", err)
	}
}

func TestDisabled(t *testing.T) {
	for name, c := range map[string]*Client{"no URL": New(Options{APIKey: testKey}), "nil": nil} {
		if c.Enabled() {
			t.Errorf("%s: enabled", name)
		}
		if _, err := c.Transcribe(t.Context(), strings.NewReader("audio"), "v.ogg", "audio/ogg"); !errors.Is(err, ErrDisabled) {
			t.Errorf("%s: error %v, want ErrDisabled", name, err)
		}
	}
	if !New(Options{URL: &url.URL{Scheme: "http", Host: "127.0.0.1:1"}}).Enabled() {
		t.Error("a client with a URL is not enabled")
	}
}
