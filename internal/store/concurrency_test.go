package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestConcurrentWritersOneStore(t *testing.T) {
	s, _ := openTest(t)
	concurrentWriters(t, []*Store{s, s})
}

func TestConcurrentWritersTwoStores(t *testing.T) {
	for _, encrypted := range []bool{false, true} {
		t.Run(fmt.Sprintf("encrypted=%v", encrypted), func(t *testing.T) {
			var key []byte
			if encrypted {
				key = newKey()
			}
			path := filepath.Join(t.TempDir(), "shared.db")
			// Open both at once: a fresh file is migrated exactly once.
			stores := make([]*Store, 2)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range stores {
				wg.Go(func() {
					stores[i], errs[i] = Open(context.Background(), path, Options{Key: key})
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("open store %d: %v", i, err)
				}
				t.Cleanup(func() { stores[i].Close() })
			}
			var migrated int
			if err := stores[0].DB().QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&migrated); err != nil {
				t.Fatal(err)
			}
			if migrated != 1 {
				t.Fatalf("schema_migrations has %d rows, want 1", migrated)
			}
			concurrentWriters(t, stores)
		})
	}
}

// concurrentWriters has one goroutine per store add 200 messages, and checks
// that all of them were stored with distinct seqs.
func concurrentWriters(t *testing.T, stores []*Store) {
	t.Helper()
	const perWriter = 200
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, len(stores))
	for w, s := range stores {
		wg.Go(func() {
			for i := range perWriter {
				_, inserted, err := s.AddMessage(ctx, Message{ChatJID: "busy@g.us", ID: fmt.Sprintf("w%d-%d", w, i),
					Sender: "s", Content: "hello", Timestamp: time.Now()})
				if err != nil {
					errs <- fmt.Errorf("writer %d message %d: %w", w, i, err)
					return
				}
				if !inserted {
					errs <- fmt.Errorf("writer %d message %d: not inserted", w, i)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(messagesOf(t, stores[0], "busy@g.us")); n != perWriter*len(stores) {
		t.Fatalf("stored %d messages, want %d", n, perWriter*len(stores))
	}
}
