package store

import (
	"context"
	"testing"
)

// The Telegram session is kept whole or not at all; its offset only moves
// forward.
func TestTelegramSession(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	if _, found, err := s.TelegramSession(ctx); err != nil || found {
		t.Fatalf("a new store has a telegram session: %v, %v", found, err)
	}
	want := TelegramSession{Token: "123456:ABC-def_ghi", BotID: 123456, Username: "andy_bot", OwnerChat: 4242}
	if _, err := s.PutTelegramSession(ctx, want); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{10, 7, 12} {
		if err := s.SetTelegramOffset(ctx, off); err != nil {
			t.Fatal(err)
		}
	}
	want.Offset = 12
	if got, found, err := s.TelegramSession(ctx); err != nil || !found || got != want {
		t.Errorf("TelegramSession = %+v, %v, %v; want %+v", got, found, err, want)
	}
	for _, bad := range []TelegramSession{
		{Token: "", BotID: 1, Username: "a_bot", OwnerChat: 1},
		{Token: "12:a b", BotID: 1, Username: "a_bot", OwnerChat: 1},
		{Token: "12:ab", BotID: 1, Username: "a bot", OwnerChat: 1},
		{Token: "12:ab", BotID: 1, Username: "a_bot", OwnerChat: -5},
	} {
		if _, err := s.PutTelegramSession(ctx, bad); err == nil {
			t.Errorf("PutTelegramSession took %+v", bad)
		}
	}
	if err := s.DeleteTelegramSession(ctx); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := s.TelegramSession(ctx); found {
		t.Error("the session is still there after DeleteTelegramSession")
	}
}

// A new owner takes main from the previous one: their private chat stops
// reaching any group, in the same transaction as the new session.
func TestTelegramNewOwnerEvictsTheOld(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, Group{Folder: "main", Name: "Main", Trigger: "@Andy", IsMain: true, AddedAt: testGroup("x").AddedAt})
	first := TelegramSession{Token: "123456:ABC-def_ghi", BotID: 123456, Username: "andy_bot", OwnerChat: 4242}
	if former, err := s.PutTelegramSession(ctx, first); err != nil || former != "" {
		t.Fatalf("first pairing: %q, %v", former, err)
	}
	if err := s.BindChat(ctx, "tg:4242", "main"); err != nil {
		t.Fatal(err)
	}
	same := first
	same.Offset = 9
	if former, err := s.PutTelegramSession(ctx, same); err != nil || former != "" {
		t.Errorf("the same owner again: %q, %v", former, err)
	}
	if _, bound, _ := s.GroupForChat(ctx, "tg:4242"); !bound {
		t.Error("the same owner lost main")
	}
	next := first
	next.OwnerChat = 5555
	if former, err := s.PutTelegramSession(ctx, next); err != nil || former != "tg:4242" {
		t.Fatalf("a new owner: %q, %v", former, err)
	}
	if g, bound, _ := s.GroupForChat(ctx, "tg:4242"); bound {
		t.Errorf("the previous owner's chat still reaches %q", g.Folder)
	}
}
