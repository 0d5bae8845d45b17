package testenv

import (
	"context"
	"log/slog"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// OpenStore opens (creating) the store at path with opt, logging nowhere
// unless opt has a Logger, and closes it when the test ends.
func OpenStore(t testing.TB, path string, opt store.Options) *store.Store {
	t.Helper()
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := store.Open(context.Background(), path, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
