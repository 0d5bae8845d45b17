package store

import (
	"context"
	"errors"
	"testing"
)

func TestSessions(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	if id, err := s.Session(ctx, "family"); err != nil || id != "" {
		t.Fatalf("Session before any = %q, %v", id, err)
	}
	for _, id := range []string{"s1", "s2"} {
		if err := s.SetSession(ctx, "family", id); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Session(ctx, "family"); err != nil || got != id {
			t.Fatalf("Session = %q, %v; want %q", got, err, id)
		}
	}
	if err := s.SetSession(ctx, "family", ""); err == nil {
		t.Fatal("empty session id accepted")
	}
	if err := s.SetSession(ctx, "nobody", "s"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session for a missing group: err = %v", err)
	}
	if err := s.ClearSession(ctx, "family"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Session(ctx, "family"); got != "" {
		t.Fatalf("Session after clear = %q", got)
	}
	if err := s.ClearSession(ctx, "family"); err != nil {
		t.Fatalf("clearing twice: %v", err)
	}

	// The database refuses an empty session id, and one of no group.
	mustPutGroup(t, s, testGroup("work"))
	wantRefused(t, s, `INSERT INTO sessions (folder, session_id, updated_at) VALUES ('work', '', 0)`)
	wantRefused(t, s, `INSERT INTO sessions (folder, session_id, updated_at) VALUES ('nobody', 's', 0)`)
}
