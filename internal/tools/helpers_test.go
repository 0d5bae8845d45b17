package tools

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/channel/channeltest"
	"github.com/nanoclaw/nanoclaw/internal/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fakeChannel serves every chat and records what is sent.
type fakeChannel = channeltest.Recorder
