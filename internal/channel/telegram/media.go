package telegram

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

// mediaFetchTimeout bounds one download, however the caller's context is
// set.
const mediaFetchTimeout = 10 * time.Minute

// errBotFileLimit is the Fetch error of a file over the Bot API's download
// limit: not the host's limit, so it does not wrap channel.ErrTooLarge.
var errBotFileLimit = fmt.Errorf("the Bot API gives bots no file over %d MB: ask the sender to share it another way", botFileLimit>>20)

// fetcher is the production fetcher: getFile, then a bounded download.
func (a *api) fetcher(fileID string, claimed int64) func(ctx context.Context, w io.Writer, max int64) error {
	return func(ctx context.Context, w io.Writer, max int64) error {
		return a.fetch(ctx, fileID, claimed, w, max)
	}
}

// fetch writes file fileID, which claims to be claimed bytes long, to w: at
// most max bytes, or it fails with an error wrapping channel.ErrTooLarge.
// A claim over max is refused without asking; since the claim may lie, the
// download is bounded as it arrives too.
func (a *api) fetch(ctx context.Context, fileID string, claimed int64, w io.Writer, max int64) error {
	if claimed > max {
		return fmt.Errorf("media of %d bytes: %w (%d bytes)", claimed, channel.ErrTooLarge, max)
	}
	if claimed > botFileLimit {
		return errBotFileLimit
	}
	ctx, cancel := context.WithTimeout(ctx, mediaFetchTimeout)
	defer cancel()
	var f *models.File
	err := a.call(ctx, "getFile", idempotent, func(ctx context.Context) error {
		var err error
		f, err = a.b.GetFile(ctx, &bot.GetFileParams{FileID: fileID})
		return err
	})
	var e *apiError
	switch {
	case errors.As(err, &e) && e.status == http.StatusBadRequest && strings.Contains(strings.ToLower(e.msg), "file is too big"):
		return errBotFileLimit
	case err != nil:
		return err
	case f.FileSize > max:
		return fmt.Errorf("media of %d bytes: %w (%d bytes)", f.FileSize, channel.ErrTooLarge, max)
	case !filePath(f.FilePath):
		return errors.New("telegram getFile: no usable file path in the answer: ask the sender to send it again")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/file/bot"+a.token+"/"+f.FilePath, nil)
	if err != nil {
		return fmt.Errorf("telegram file download: %s", a.redact(err.Error()))
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("telegram file download: %s", a.redact(err.Error()))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("telegram file download: HTTP %d: ask the sender to send it again", resp.StatusCode)
	}
	if resp.ContentLength > max {
		return fmt.Errorf("media of %d bytes: %w (%d bytes)", resp.ContentLength, channel.ErrTooLarge, max)
	}
	n, err := io.Copy(&limitWriter{w: w, left: max}, resp.Body)
	switch {
	case errors.Is(err, channel.ErrTooLarge):
		return fmt.Errorf("media download: more than %d bytes: %w", max, channel.ErrTooLarge)
	case err != nil:
		return fmt.Errorf("telegram file download: %s", a.redact(err.Error()))
	case f.FileSize > 0 && n != f.FileSize:
		return fmt.Errorf("telegram file download: %d bytes, not the %d announced: ask the sender to send it again", n, f.FileSize)
	}
	return nil
}

// filePath reports whether p, a path getFile answered, is one to put in a
// download URL: relative, printable ASCII, no ".." and nothing that would
// end the path (a query or a fragment).
func filePath(p string) bool {
	if p == "" || len(p) > 512 || p[0] == '/' {
		return false
	}
	for i := range len(p) {
		if c := p[i]; c <= ' ' || c > '~' || c == '?' || c == '#' || c == '%' || c == '\\' {
			return false
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// limitWriter passes at most left bytes on to w; a write past that fails
// with channel.ErrTooLarge and writes nothing of itself.
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.left {
		return 0, channel.ErrTooLarge
	}
	n, err := l.w.Write(p)
	l.left -= int64(n)
	return n, err
}
