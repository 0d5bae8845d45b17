package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestUpsertChat(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)

	steps := []struct {
		name string
		in   Chat
		want Chat
	}{
		{"first sight", Chat{JID: "g@g.us", Name: "Family", Channel: "whatsapp", IsGroup: true, LastActivity: t0},
			Chat{JID: "g@g.us", Name: "Family", Channel: "whatsapp", IsGroup: true, LastActivity: t0}},
		{"nameless newer event keeps the name", Chat{JID: "g@g.us", Channel: "whatsapp", IsGroup: true, LastActivity: t0.Add(time.Hour)},
			Chat{JID: "g@g.us", Name: "Family", Channel: "whatsapp", IsGroup: true, LastActivity: t0.Add(time.Hour)}},
		{"older event does not move activity back", Chat{JID: "g@g.us", Name: "Fam", Channel: "whatsapp", IsGroup: true, LastActivity: t0},
			Chat{JID: "g@g.us", Name: "Fam", Channel: "whatsapp", IsGroup: true, LastActivity: t0.Add(time.Hour)}},
		{"sub-millisecond times are truncated", Chat{JID: "p@s.whatsapp.net", Channel: "whatsapp", LastActivity: t0.Add(1500 * time.Microsecond)},
			Chat{JID: "p@s.whatsapp.net", Channel: "whatsapp", LastActivity: t0.Add(time.Millisecond)}},
	}
	for _, st := range steps {
		if err := s.UpsertChat(ctx, st.in); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got, found, err := s.GetChat(ctx, st.in.JID)
		if err != nil || !found || got != st.want {
			t.Fatalf("%s: GetChat = %+v, %v, %v\nwant %+v", st.name, got, found, err, st.want)
		}
	}
	if _, found, err := s.GetChat(ctx, "never@g.us"); found || err != nil {
		t.Fatalf("GetChat(missing) = %v, %v", found, err)
	}

	for _, bad := range []struct {
		c       Chat
		wantErr string
	}{
		{Chat{Channel: "whatsapp", LastActivity: t0}, "empty chat id"},
		{Chat{JID: "x\n", Channel: "whatsapp", LastActivity: t0}, "control character"},
		{Chat{JID: "x", LastActivity: t0}, "empty channel"},
		{Chat{JID: "x", Channel: "whatsapp"}, "before 1970"},
	} {
		if err := s.UpsertChat(ctx, bad.c); err == nil || !strings.Contains(err.Error(), bad.wantErr) {
			t.Errorf("UpsertChat(%+v) = %v, want %q", bad.c, err, bad.wantErr)
		}
	}
}

func TestListChatsNewestFirstSkipsBadRows(t *testing.T) {
	ctx := context.Background()
	s, logs := openTest(t)
	t0 := time.Date(2025, 5, 1, 10, 0, 0, 0, time.UTC)
	for i, jid := range []string{"old@g.us", "new@g.us", "mid@g.us"} {
		at := map[int]time.Duration{0: 0, 1: 2 * time.Hour, 2: time.Hour}[i]
		if err := s.UpsertChat(ctx, Chat{JID: jid, Channel: "whatsapp", LastActivity: t0.Add(at)}); err != nil {
			t.Fatal(err)
		}
	}
	rawExec(t, s, nil, `INSERT INTO chats VALUES ('weird@g.us', '', 'whatsapp', 7, 0)`)
	rawExec(t, s, nil, `INSERT INTO chats VALUES ('nochan@g.us', '', '', 0, 0)`)

	list, err := s.ListChats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var jids []string
	for _, c := range list {
		jids = append(jids, c.JID)
	}
	if strings.Join(jids, " ") != "new@g.us mid@g.us old@g.us" {
		t.Fatalf("ListChats = %v", jids)
	}
	wantSkipLogged(t, logs, "chats", "weird@g.us")
	wantSkipLogged(t, logs, "chats", "nochan@g.us")
	_, _, err = s.GetChat(ctx, "weird@g.us")
	wantBadRow(t, err, "chats", "weird@g.us")
}
