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
	if err := s.PutTelegramSession(ctx, want); err != nil {
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
		if err := s.PutTelegramSession(ctx, bad); err == nil {
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
