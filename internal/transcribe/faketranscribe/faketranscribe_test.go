package faketranscribe

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"
)

// form is a transcription request's body: the fields given, and a file
// part when fileName is not "".
func form(t *testing.T, fields map[string]string, fileName string, audio []byte) (body []byte, ctype string) {
	t.Helper()
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	if fileName != "" {
		p, err := w.CreateFormFile("file", fileName)
		if err != nil {
			t.Fatal(err)
		}
		p.Write(audio)
	}
	w.Close()
	return b.Bytes(), w.FormDataContentType()
}

func post(t *testing.T, url, ctype, auth string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestChecksAndScript(t *testing.T) {
	s := New()
	defer s.Close()
	s.RequireKey("k")
	s.Script(Text("first"), Error(http.StatusTooManyRequests, "slow down"))

	good, ctype := form(t, map[string]string{"model": "whisper-1"}, "v.ogg", []byte("audio"))
	noModel, _ := form(t, nil, "v.ogg", []byte("audio"))
	noFile, noFileType := form(t, map[string]string{"model": "whisper-1"}, "", nil)
	for _, tc := range []struct {
		name, url, ctype, auth string
		body                   []byte
		status                 int
		answer                 string
	}{
		{"wrong key", s.URL(), ctype, "Bearer x", good, 401, "Incorrect API key"},
		{"wrong path", strings.TrimSuffix(s.URL(), Path) + "/v1/other", ctype, "Bearer k", good, 404, "no such endpoint"},
		{"not multipart", s.URL(), "application/json", "Bearer k", []byte(`{}`), 400, "not multipart"},
		{"no model", s.URL(), ctype, "Bearer k", noModel, 400, "model"},
		{"no file", s.URL(), noFileType, "Bearer k", noFile, 400, "file"},
		{"scripted text", s.URL(), ctype, "Bearer k", good, 200, `{"text":"first"}`},
		{"scripted error", s.URL(), ctype, "Bearer k", good, 429, "slow down"},
		{"script ran out", s.URL(), ctype, "Bearer k", good, 200, DefaultTranscript},
	} {
		status, answer := post(t, tc.url, tc.ctype, tc.auth, tc.body)
		if status != tc.status || !strings.Contains(answer, tc.answer) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, status, answer, tc.status, tc.answer)
		}
	}

	reqs := s.Requests()
	if len(reqs) != 8 {
		t.Fatalf("%d requests recorded, want 8", len(reqs))
	}
	r := reqs[5]
	if r.Problem != "" || r.Model() != "whisper-1" || r.FileName != "v.ogg" || r.FileType != "application/octet-stream" ||
		string(r.Audio) != "audio" || r.Status != 200 || r.Header.Get("Authorization") != "Bearer k" {
		t.Errorf("recorded %+v", r)
	}
	for i, want := range []string{"no or wrong key", "no such endpoint: POST /v1/other", "not multipart", "no model field", "no file, or an empty one"} {
		if !strings.Contains(reqs[i].Problem, want) {
			t.Errorf("request %d: problem %q, want %q", i, reqs[i].Problem, want)
		}
	}
	var a struct{ Error struct{ Message string } }
	_, answer := post(t, s.URL(), ctype, "", good)
	if json.Unmarshal([]byte(answer), &a) != nil || a.Error.Message == "" {
		t.Errorf("401 body %s: want OpenAI's error shape", answer)
	}
}

func TestWaitAndDelay(t *testing.T) {
	s := New()
	defer s.Close()
	s.Script(Reply{Body: []byte(`{"text":"slow"}`), Delay: 50 * time.Millisecond})
	body, ctype := form(t, map[string]string{"model": "m"}, "v.ogg", []byte("audio"))
	go func() { // not post: t.Fatal belongs to the test's goroutine
		if resp, err := http.Post(s.URL(), ctype, bytes.NewReader(body)); err == nil {
			resp.Body.Close()
		}
	}()

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := s.Wait(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if r := s.Requests()[0]; r.Status != 200 {
		t.Errorf("status %d after Wait, want 200 recorded", r.Status)
	}
	short, cancel2 := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel2()
	if err := s.Wait(short, 2); err == nil {
		t.Error("Wait for a request that never came returned no error")
	}
}
