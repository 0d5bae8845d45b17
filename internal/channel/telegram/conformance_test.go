package telegram

import (
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
	"github.com/nanoclaw/nanoclaw/internal/channel/channeltest"
	"github.com/nanoclaw/nanoclaw/internal/channel/telegram/faketelegram"
)

// The Telegram channel passes the suite every channel passes, against the
// fake Bot API on loopback.
func TestConformance(t *testing.T) {
	channeltest.Conformance(t, &service{updates: map[string]int64{}})
}

// typingShown is how long Telegram shows a chat action without renewal.
const typingShown = 5 * time.Second

// service is the conformance suite's view of faketelegram: the group is
// family, the direct chat the stranger's private chat with the bot.
type service struct {
	e *env

	mu      sync.Mutex
	updates map[string]int64 // message id → its update's id
}

func (s *service) Channel(t *testing.T) channel.Channel {
	s.e = newEnv(t)
	return s.e.ch
}

func (s *service) Supports(channeltest.Feature) bool { return true }

func (s *service) Chat(group bool) string {
	if group {
		return chatID(family.ID)
	}
	return chatID(stranger.ID)
}

func (s *service) Inbound(t *testing.T, in channeltest.Inbound) string {
	chat := faketelegram.Private(stranger)
	if in.Chat == s.Chat(true) {
		chat = family
	}
	msg := faketelegram.In{Chat: chat, From: stranger, Text: in.Text, MentionBot: in.MentionsSelf}
	if in.ReplyTo != "" {
		id, err := strconv.Atoi(in.ReplyTo)
		if err != nil {
			t.Fatalf("reply to %q: not a Telegram message id", in.ReplyTo)
		}
		msg.ReplyTo = id
	}
	if m := in.Media; m != nil {
		kinds := map[channel.MediaKind]string{channel.KindImage: "photo", channel.KindDocument: "document", channel.KindVoice: "voice",
			channel.KindAudio: "audio", channel.KindVideo: "video", channel.KindSticker: "sticker"}
		msg.Media = &faketelegram.Media{Kind: kinds[m.Kind], MIME: m.MIME, Name: m.FileName, Data: m.Data}
	}
	p := s.e.fake.Post(msg)
	id := strconv.Itoa(p.MessageID)
	s.mu.Lock()
	s.updates[id] = p.UpdateID
	s.mu.Unlock()
	return id
}

func (s *service) Acked(id string) bool {
	s.mu.Lock()
	u, ok := s.updates[id]
	s.mu.Unlock()
	return ok && s.e.fake.Acked(u)
}

// kinds are the kinds of file each method sends.
var kinds = map[string]channel.MediaKind{"sendPhoto": channel.KindImage, "sendDocument": channel.KindDocument,
	"sendVoice": channel.KindVoice, "sendAudio": channel.KindAudio, "sendVideo": channel.KindVideo}

// Outbound is what the fake received, as Telegram's users see it: text as
// shown (formatting dropped), and typing as an indicator that is shown by
// a chat action and goes away typingShown later unless renewed — Telegram
// has no call to clear it, so "cleared" is its lapse.
func (s *service) Outbound() []channeltest.Outbound {
	type timed struct {
		at time.Time
		o  channeltest.Outbound
	}
	var out []timed
	lastTyping := map[int64]time.Time{}
	for _, m := range s.e.fake.Sent() {
		chat := chatID(m.Chat)
		switch m.Method {
		case "sendMessage":
			out = append(out, timed{m.Time, channeltest.Outbound{Kind: channeltest.OutText, Chat: chat, Text: m.Shown, ReplyTo: replyTo(m.ReplyTo)}})
		case "setMessageReaction":
			out = append(out, timed{m.Time, channeltest.Outbound{Kind: channeltest.OutReaction, Chat: chat, Target: strconv.Itoa(m.Target), Emoji: m.Emoji}})
		case "sendChatAction":
			if last, ok := lastTyping[m.Chat]; ok && m.Time.Sub(last) > typingShown {
				out = append(out, timed{last.Add(typingShown), channeltest.Outbound{Kind: channeltest.OutTyping, Chat: chat}})
			}
			lastTyping[m.Chat] = m.Time
			out = append(out, timed{m.Time, channeltest.Outbound{Kind: channeltest.OutTyping, Chat: chat, Typing: true}})
		default:
			out = append(out, timed{m.Time, channeltest.Outbound{Kind: channeltest.OutFile, Chat: chat, Text: m.Shown,
				File: &channel.File{Name: m.FileName, Kind: kinds[m.Method], Data: m.File}}})
		}
	}
	for chat, last := range lastTyping {
		if lapse := last.Add(typingShown); time.Now().After(lapse) {
			out = append(out, timed{lapse, channeltest.Outbound{Kind: channeltest.OutTyping, Chat: chatID(chat)}})
		}
	}
	slices.SortStableFunc(out, func(a, b timed) int { return a.at.Compare(b.at) })
	list := make([]channeltest.Outbound, len(out))
	for i, o := range out {
		list[i] = o.o
	}
	return list
}

func replyTo(id int) string {
	if id == 0 {
		return ""
	}
	return strconv.Itoa(id)
}

func (s *service) RateLimit(n int, retryAfter time.Duration) { s.e.fake.Flood(n, retryAfter) }
func (s *service) Drop()                                     { s.e.fake.Drop() }
func (s *service) Revoke()                                   { s.e.fake.Revoke() }
func (s *service) MaxText() int                              { return MaxMessageUnits }
