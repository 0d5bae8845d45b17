package whatsapp

import (
	"context"
	"fmt"
	"strings"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/nanoclaw/nanoclaw/internal/store"
)

// ParseChatJID validates a chat id NanoClaw may send to: "DIGITS@s.whatsapp.net"
// (a user by phone number), "DIGITS@lid" (a user by LID) or "ID@g.us" (a
// group), without a device part. The grammar is the store's (R14), so a chat
// can be registered as a group exactly when the channel can send to it.
func ParseChatJID(s string) (types.JID, error) {
	user, server, ok := strings.Cut(s, "@")
	if !ok {
		return types.JID{}, fmt.Errorf("WhatsApp chat id %q: want USER@SERVER", s)
	}
	if err := store.ValidateChatID(s); err != nil {
		return types.JID{}, err
	}
	return types.NewJID(user, server), nil
}

// Send sends text to a chat, split into parts of at most MaxMessageRunes,
// and returns the ids of the parts sent. On an error it returns the ids of
// the parts already sent along with it. Each part waits for its turn in the
// chat's send limit (R9): a flood is slowed down, never dropped; ctx bounds
// the wait.
func (c *Channel) Send(ctx context.Context, jid, text string) ([]string, error) {
	to, err := ParseChatJID(jid)
	if err != nil {
		return nil, fmt.Errorf("whatsapp send: %w", err)
	}
	parts := SplitText(validText(text), MaxMessageRunes)
	if len(parts) == 0 {
		return nil, fmt.Errorf("whatsapp send to %s: empty text", jid)
	}
	if err := c.usable(); err != nil {
		return nil, fmt.Errorf("whatsapp send to %s: %w", jid, err)
	}
	ids := make([]string, 0, len(parts))
	for i, part := range parts {
		if err := c.limit.Wait(ctx, jid); err != nil {
			return ids, fmt.Errorf("whatsapp send to %s: part %d of %d: waiting for the chat's send limit (%s): %w", jid, i+1, len(parts), c.limit, err)
		}
		resp, err := c.send(ctx, to, &waE2E.Message{Conversation: proto.String(part)})
		if err != nil {
			return ids, fmt.Errorf("whatsapp send to %s: part %d of %d: %w", jid, i+1, len(parts), err)
		}
		ids = append(ids, resp.ID)
	}
	return ids, nil
}

// CheckSend reports whether a message to chat jid may go now under the
// chat's send limit: nil, or a *channel.RateLimitError (R9).
func (c *Channel) CheckSend(jid string) error { return c.limit.Check(jid) }

// SetTyping shows or clears "typing…" in a chat.
func (c *Channel) SetTyping(ctx context.Context, jid string, typing bool) error {
	to, err := ParseChatJID(jid)
	if err != nil {
		return fmt.Errorf("whatsapp typing: %w", err)
	}
	if err := c.usable(); err != nil {
		return fmt.Errorf("whatsapp typing in %s: %w", jid, err)
	}
	state := types.ChatPresencePaused
	if typing {
		state = types.ChatPresenceComposing
	}
	if err := c.cli.SendChatPresence(ctx, to, state, ""); err != nil {
		return fmt.Errorf("whatsapp typing in %s: %w", jid, err)
	}
	return nil
}
