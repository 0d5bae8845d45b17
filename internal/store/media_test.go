package store

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A message keeps its attachments, reply and addressing; what the database
// holds is read back strictly, so a planted path out of media/ is skipped.
func TestMessageAttachments(t *testing.T) {
	ctx := context.Background()
	s, logs := openTest(t)
	m := Message{ChatJID: "g@g.us", ID: "m1", Sender: "1@s.whatsapp.net", SenderName: "Carol", Content: "look",
		Timestamp: time.UnixMilli(1000).UTC(), ReplyTo: "m0", QuoteSender: "2@s.whatsapp.net", Addressed: true,
		Attachments: []Attachment{
			{Kind: "image", MIME: "image/jpeg", Path: "media/m1-0.jpg", Bytes: 1234},
			{Kind: "document", MIME: "application/pdf", FileName: "plan.pdf", Note: "larger than the media limit: 40 MB, not fetched"},
			{Kind: "voice", MIME: "audio/ogg", Path: "media/m1-2.ogg", Bytes: 99, Transcribed: true},
		}}
	if _, _, err := s.AddMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, found, err := s.MessageByID(ctx, "g@g.us", "m1")
	if err != nil || !found {
		t.Fatalf("MessageByID = %v, %v", found, err)
	}
	got.Seq, got.Timestamp = 0, got.Timestamp.UTC()
	if !reflect.DeepEqual(got, m) {
		t.Errorf("read back\n %+v\nwant\n %+v", got, m)
	}
	if _, found, err := s.MessageByID(ctx, "g@g.us", "nope"); err != nil || found {
		t.Errorf("MessageByID of no message = %v, %v", found, err)
	}

	for _, bad := range []Attachment{
		{Kind: "image", Path: "../etc/passwd"},
		{Kind: "image", Path: "media/../../x"},
		{Kind: "image", Path: "media/.hidden"},
		{Kind: "image", Path: "other/x.jpg"},
		{Kind: "executable"},
		{Kind: "document", FileName: "a\nb"},
		{Kind: "image", Bytes: -1},
	} {
		m := Message{ChatJID: "g@g.us", ID: "bad", Sender: "s", Timestamp: time.Now(), Attachments: []Attachment{bad}}
		if _, _, err := s.AddMessage(ctx, m); err == nil {
			t.Errorf("AddMessage took attachment %+v", bad)
		}
	}
	// Planted past the store: skipped and logged when read.
	rawExec(t, s, nil, `INSERT INTO messages (chat_jid, id, sender, sender_name, content, timestamp, from_me, is_bot, attachments)
		VALUES ('g@g.us', 'planted', 's', 'S', 'x', 2000, 0, 0, '[{"kind":"image","path":"/etc/shadow"}]'),
		('g@g.us', 'unknown', 's', 'S', 'x', 2000, 0, 0, '[{"kind":"image","exec":"rm"}]')`)
	if _, _, err := s.MessageByID(ctx, "g@g.us", "planted"); err == nil {
		t.Error("a planted attachment path was read back")
	}
	b, err := s.Backlog(ctx, "g@g.us", 0, 10)
	if err != nil || len(b.Messages) != 1 || b.Messages[0].ID != "m1" {
		t.Errorf("Backlog = %+v, %v; want m1 alone", b, err)
	}
	wantSkipLogged(t, logs, "messages", "2")
	wantSkipLogged(t, logs, "messages", "3")
}

// A file reply keeps its file; one the channel gave up on is not sent
// again, and is reported to its group once.
func TestOutboxFilesAndFailures(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	file := NewOutgoing("g@g.us", "family", "[file plan.pdf]")
	file.File = &OutFile{Spool: file.ID + ".pdf", Name: "plan.pdf", MIME: "application/pdf", Kind: "document", Caption: "the plan"}
	file.ReplyTo = "m1"
	text := NewOutgoing("g@g.us", "family", "Andy: hi")
	for _, o := range []Outgoing{file, text} {
		if err := s.Enqueue(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	unsent, err := s.Unsent(ctx)
	if err != nil || len(unsent) != 2 || !reflect.DeepEqual(unsent[0].File, file.File) || unsent[0].ReplyTo != "m1" {
		t.Fatalf("Unsent = %+v, %v", unsent, err)
	}
	if err := s.MarkFailed(ctx, text.ID, "whatsapp send: not connected\nsecond line"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed(ctx, text.ID, "again"); err == nil {
		t.Error("a message was marked failed twice")
	}
	if unsent, _ := s.Unsent(ctx); len(unsent) != 1 || unsent[0].ID != file.ID {
		t.Errorf("Unsent after a failure = %+v; want the file alone", unsent)
	}
	und, err := s.Undelivered(ctx, "family")
	if err != nil || len(und) != 1 || und[0].ID != text.ID || und[0].FailedAt == nil || und[0].Error != "whatsapp send: not connected" {
		t.Fatalf("Undelivered = %+v, %v", und, err)
	}
	if other, _ := s.Undelivered(ctx, "work"); len(other) != 0 {
		t.Errorf("another group's undelivered = %+v", other)
	}
	if err := s.MarkTold(ctx, text.ID); err != nil {
		t.Fatal(err)
	}
	if und, _ := s.Undelivered(ctx, "family"); len(und) != 0 {
		t.Errorf("Undelivered after MarkTold = %+v", und)
	}
	for _, bad := range []OutFile{
		{Spool: "../x", Name: "a", MIME: "x/y", Kind: "document"},
		{Spool: "ok", Name: "a/b", MIME: "x/y", Kind: "document"},
		{Spool: "ok", Name: "a", MIME: "x/y", Kind: "sticker"},
		{Spool: "ok", Name: "", MIME: "x/y", Kind: "image"},
	} {
		o := NewOutgoing("g@g.us", "family", "x")
		o.File = &bad
		if err := s.Enqueue(ctx, o); err == nil || !strings.Contains(err.Error(), "file") {
			t.Errorf("Enqueue took file %+v: %v", bad, err)
		}
	}
}
