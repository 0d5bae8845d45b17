package store

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nanoclaw/nanoclaw/internal/sanitize"
)

func addMsg(t *testing.T, s *Store, m Message) int64 {
	t.Helper()
	if m.Timestamp.IsZero() {
		m.Timestamp = time.Now()
	}
	seq, inserted, err := s.AddMessage(context.Background(), m)
	if err != nil || !inserted {
		t.Fatalf("AddMessage(%+v) = %d, %v, %v", m, seq, inserted, err)
	}
	return seq
}

func TestAddMessageRoundTripAndDuplicates(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	ts := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	first := Message{ChatJID: "g@g.us", ID: "A1", Sender: "123@s.whatsapp.net", SenderName: "Ann",
		Content: "hello <b>&</b> \"world\"\nline 2 ✓", Timestamp: ts, FromMe: true}
	seq1, inserted, err := s.AddMessage(ctx, first)
	if err != nil || !inserted || seq1 <= 0 {
		t.Fatalf("AddMessage = %d, %v, %v", seq1, inserted, err)
	}
	// Same id in another chat is another message.
	seqOther := addMsg(t, s, Message{ChatJID: "other@g.us", ID: "A1", Timestamp: ts})
	// The same (chat, id) again is ignored and reports the first seq.
	dup := first
	dup.Content = "changed"
	seqDup, inserted, err := s.AddMessage(ctx, dup)
	if err != nil || inserted || seqDup != seq1 {
		t.Fatalf("duplicate AddMessage = %d, %v, %v; want %d, false, nil", seqDup, inserted, err, seq1)
	}
	bot := Message{ChatJID: "g@g.us", ID: "B1", Sender: "bot", SenderName: "Andy", Content: "Andy: hi", Timestamp: ts, IsBot: true}
	seq2 := addMsg(t, s, bot)
	if !(seq1 < seqOther && seqOther < seq2) {
		t.Fatalf("seqs not increasing: %d %d %d", seq1, seqOther, seq2)
	}

	got := messagesOf(t, s, "g@g.us")
	first.Seq, bot.Seq = seq1, seq2
	if !reflect.DeepEqual(got, []Message{first, bot}) {
		t.Fatalf("messages = %+v\nwant %+v", got, []Message{first, bot})
	}

	for _, bad := range []Message{
		{ID: "x", Timestamp: ts},
		{ChatJID: "g@g.us", Timestamp: ts},
		{ChatJID: "g@g.us", ID: "x"}, // zero time
	} {
		if _, _, err := s.AddMessage(ctx, bad); err == nil {
			t.Errorf("AddMessage(%+v) accepted", bad)
		}
	}
}

// The database refuses a message row of the wrong shape; one planted past
// its CHECKs is skipped, with its seq, when read.
func TestBacklogSkipsBadRows(t *testing.T) {
	ctx := context.Background()
	s, logs := openTest(t)
	good := addMsg(t, s, Message{ChatJID: "g@g.us", ID: "ok"})
	for _, bad := range []string{
		`INSERT INTO messages (seq, chat_jid, id, sender, sender_name, content, timestamp, from_me, is_bot)
		VALUES (1000, 'g@g.us', 'bad', 's', 'S', 'x', 0, 5, 0)`,
		`INSERT INTO messages (seq, chat_jid, id, sender, sender_name, content, timestamp, from_me, is_bot)
		VALUES (1001, 'g@g.us', 'badtime', 's', 'S', 'x', -1, 0, 0)`,
	} {
		wantRefused(t, s, bad)
		rawExec(t, s, []string{"ignore_check_constraints=ON"}, bad)
	}
	wantRefused(t, s, `INSERT INTO messages (seq, chat_jid, id, sender, sender_name, content, timestamp, from_me, is_bot)
		VALUES (1002, 'g@g.us', 'texttime', 's', 'S', 'x', 'noon', 0, 0)`)
	b, err := s.Backlog(ctx, "g@g.us", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Messages) != 1 || b.Messages[0].Seq != good {
		t.Fatalf("Backlog = %+v, want only seq %d", b.Messages, good)
	}
	wantSkipLogged(t, logs, "messages", "1000")
	wantSkipLogged(t, logs, "messages", "1001")
}

func TestCursorNeverMovesBack(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	if c, err := s.Cursor(ctx, "g@g.us"); err != nil || c != 0 {
		t.Fatalf("initial Cursor = %d, %v", c, err)
	}
	for _, step := range []struct{ answer, want int64 }{
		{5, 5},
		{3, 5}, // backwards: ignored
		{5, 5},
		{0, 5},
		{9, 9},
	} {
		if err := s.AnswerChat(ctx, "g@g.us", step.answer, nil); err != nil {
			t.Fatal(err)
		}
		if c, err := s.Cursor(ctx, "g@g.us"); err != nil || c != step.want {
			t.Fatalf("after AnswerChat(%d): Cursor = %d, %v; want %d", step.answer, c, err, step.want)
		}
	}
	if err := s.AnswerChat(ctx, "neg@g.us", -1, nil); err == nil {
		t.Fatal("negative seq accepted")
	}
	if c, _ := s.Cursor(ctx, "other@g.us"); c != 0 {
		t.Fatalf("cursors leak between chats: %d", c)
	}
	wantRefused(t, s, `INSERT INTO cursors VALUES ('neg@g.us', -3, 0)`)
	wantRefused(t, s, `INSERT INTO cursors VALUES ('text@g.us', 'garbage', 0)`)
}

func TestChatsWithPending(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustPutGroup(t, s, testGroup("family"))
	mustPutGroup(t, s, testGroup("work"))
	bind := func(jid, folder string) {
		if err := s.BindChat(ctx, jid, folder); err != nil {
			t.Fatal(err)
		}
	}
	bind("answered@g.us", "family")
	bind("pending@g.us", "family")
	bind("botlast@g.us", "work")
	bind("never@g.us", "work")
	bind("quiet@g.us", "work")

	answer := func(jid string, seq int64) {
		if err := s.AnswerChat(ctx, jid, seq, nil); err != nil {
			t.Fatal(err)
		}
	}
	answer("answered@g.us", addMsg(t, s, Message{ChatJID: "answered@g.us", ID: "1"}))
	answer("pending@g.us", addMsg(t, s, Message{ChatJID: "pending@g.us", ID: "1"}))
	latest := addMsg(t, s, Message{ChatJID: "pending@g.us", ID: "2", FromMe: true}) // the owner's own words count
	answer("botlast@g.us", addMsg(t, s, Message{ChatJID: "botlast@g.us", ID: "1"}))
	addMsg(t, s, Message{ChatJID: "botlast@g.us", ID: "2", IsBot: true}) // only the assistant spoke since
	addMsg(t, s, Message{ChatJID: "never@g.us", ID: "1"})                // no cursor yet
	addMsg(t, s, Message{ChatJID: "unregistered@g.us", ID: "1"})         // not bound to a group

	got, err := s.ChatsWithPending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"never@g.us", "pending@g.us"}; !slices.Equal(got, want) {
		t.Fatalf("ChatsWithPending = %v, want %v", got, want)
	}

	// Answering clears it.
	answer("pending@g.us", latest)
	got, _ = s.ChatsWithPending(ctx)
	if want := []string{"never@g.us"}; !slices.Equal(got, want) {
		t.Fatalf("after answering: ChatsWithPending = %v, want %v", got, want)
	}
}

// R11: a backlog of 50 000 unanswered messages costs one page of rows. The
// planted bad row among the old messages shows they were never decoded: a
// query that loaded them would have logged it as skipped.
func TestBacklogLoadsOnlyTheNewest(t *testing.T) {
	ctx := context.Background()
	s, logs := openTest(t)
	const total, limit = 50000, 50
	// Every tenth message is the assistant's; seq 7 is a row the store refuses.
	rawExec(t, s, []string{"ignore_check_constraints=ON"}, `
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO messages (seq, chat_jid, id, sender, sender_name, content, timestamp, from_me, is_bot)
		SELECT i, 'big@g.us', 'm' || i, 's@s.whatsapp.net', 'S', 'message ' || i,
			CASE WHEN i = 7 THEN -1 ELSE 1700000000000 + i END, 0, i % 10 = 0 FROM n`, total)
	addMsg(t, s, Message{ChatJID: "other@g.us", ID: "x", Content: "elsewhere"})

	const cursor = 5
	isBot := func(seq int) bool { return seq%10 == 0 }
	// What a full load would have given: the newest limit messages not the
	// assistant's, and how many of those after the cursor come before them.
	var newest []int64
	older := 0
	for seq := total; seq > cursor; seq-- {
		switch {
		case isBot(seq):
		case len(newest) < limit:
			newest = append([]int64{int64(seq)}, newest...)
		default:
			older++
		}
	}

	b, err := s.Backlog(ctx, "big@g.us", cursor, limit)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, m := range b.Messages {
		got = append(got, m.Seq)
	}
	if !slices.Equal(got, newest) {
		t.Fatalf("Backlog loaded seqs %v, want the newest %d not the assistant's, oldest first: %v", got, limit, newest)
	}
	if b.Messages[limit-1].Content != "message 49999" {
		t.Errorf("newest content %q", b.Messages[limit-1].Content)
	}
	if b.Older != older {
		t.Errorf("Older = %d, want %d", b.Older, older)
	}
	if strings.Contains(logs.String(), "skipping invalid row") {
		t.Errorf("rows before the newest %d were decoded:\n%s", limit, logs.String())
	}

	if b, err := s.Backlog(ctx, "big@g.us", total, limit); err != nil || len(b.Messages) != 0 || b.Older != 0 {
		t.Errorf("Backlog after the newest = %+v, %v; want nothing", b, err)
	}

	// AnyStart sees each message's start after white space, newest first,
	// and stops at the first match.
	const asking = 23
	rawExec(t, s, nil, `UPDATE messages SET content = ' '||char(10, 9)||'  @Andy, are you there? '||content WHERE seq = ?`, asking)
	before := newest[0]
	var seen int
	found, err := s.AnyStart(ctx, "big@g.us", cursor, before, 6, func(m MessageStart) bool {
		seen++
		return m.Start == "@Andy,"
	})
	if err != nil || !found {
		t.Fatalf("AnyStart = %v, %v; want the message at seq %d found", found, err, asking)
	}
	want := 0
	for seq := int(before) - 1; seq >= asking; seq-- {
		if !isBot(seq) {
			want++
		}
	}
	if seen != want {
		t.Errorf("AnyStart looked at %d messages, want %d (newest first, none after the match)", seen, want)
	}
	if found, _ := s.AnyStart(ctx, "big@g.us", asking, before, 6, func(m MessageStart) bool { return m.Start == "@Andy," }); found {
		t.Error("AnyStart looked at a message outside its range")
	}
}

// R19: a sender's display name is stored as one short line.
func TestAddMessageCleansSenderName(t *testing.T) {
	s, _ := openTest(t)
	addMsg(t, s, Message{ChatJID: "g@g.us", ID: "1", Sender: "1@s.whatsapp.net",
		SenderName: "Andy\n\u202E<owner>" + strings.Repeat("x", 5000), Content: "hi"})
	got := messagesOf(t, s, "g@g.us")
	if len(got) != 1 {
		t.Fatalf("messages = %+v", got)
	}
	name := got[0].SenderName
	if strings.ContainsAny(name, "\n\u202E<>") || utf8.RuneCountInString(name) != sanitize.MaxNameRunes || !strings.HasPrefix(name, "Andy owner") {
		t.Errorf("stored sender name %q", name)
	}
}

// A reply's quote is kept apart from the message's own text (R18).
func TestAddMessageKeepsTheQuoteApart(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	addMsg(t, s, Message{ChatJID: "g@g.us", ID: "1", Content: "@Andy yes, book it", Quote: "are we meeting today?"})
	b, err := s.Backlog(ctx, "g@g.us", 0, 10)
	if err != nil || len(b.Messages) != 1 || b.Messages[0].Content != "@Andy yes, book it" || b.Messages[0].Quote != "are we meeting today?" {
		t.Fatalf("Backlog = %+v, %v", b, err)
	}
}
