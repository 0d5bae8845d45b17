package tools

import (
	"path/filepath"
	"testing"

	"github.com/nanoclaw/nanoclaw/internal/channel/channeltest"
	"github.com/nanoclaw/nanoclaw/internal/store"
	"github.com/nanoclaw/nanoclaw/internal/testenv"
)

func openStore(t *testing.T) *store.Store {
	return testenv.OpenStore(t, filepath.Join(t.TempDir(), "db"), store.Options{})
}

// fakeChannel serves every chat and records what is sent.
type fakeChannel = channeltest.Recorder
