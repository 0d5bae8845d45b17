package channeltest

import (
	"fmt"
	"testing"
	"time"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

// Service is a chat service faked for the conformance suite (Conformance):
// an adapter's test gives the suite its channel on the fake, what the
// chat's other members do there, and what the service saw the adapter do.
// The suite asks only through this interface, so every adapter (WhatsApp
// with a fake at its seam, Telegram with a fake Bot API on loopback, the
// local channel) is held to the same behaviour.
type Service interface {
	// Channel makes a new channel on the fake service, not yet connected.
	// The suite connects it (Connect) and closes it.
	Channel(t *testing.T) channel.Channel
	// Supports reports whether the service has a feature: the suite skips
	// what a service cannot do, and says so.
	Supports(f Feature) bool
	// Chat is a chat id, in the adapter's form, where the suite's messages
	// go: a group chat with other members (group) or a direct chat with one;
	// "" when the service has no such chat (the local channel has no direct
	// chats), and the suite leaves that kind out.
	Chat(group bool) string
	// Inbound makes another member's message arrive at the adapter and
	// returns the id the adapter will report it under. It does not wait for
	// the adapter: the suite waits for its handler.
	Inbound(t *testing.T, in Inbound) string
	// Acked reports whether the service counts message id as delivered to
	// the adapter (acknowledged; its update offset committed): never before
	// the adapter's handler returned from storing it.
	Acked(id string) bool
	// Outbound is what the service received from the adapter so far, in
	// order: what it accepted, so a send it refused (RateLimit) is not in
	// it. It may lag behind the call that sent it; the suite waits.
	Outbound() []Outbound
	// RateLimit makes the service refuse the adapter's next n sends with
	// its flood answer, asking it to wait retryAfter.
	RateLimit(n int, retryAfter time.Duration)
	// Drop cuts the adapter's connection once; the adapter must come back
	// by itself.
	Drop()
	// Revoke makes the adapter's credential (session, token) invalid from
	// now on.
	Revoke()
	// MaxText is the longest text one message of the service carries, in
	// characters; the adapter splits longer ones. 0 means no limit: a long
	// text must then arrive whole, in one message.
	MaxText() int
}

// Feature is something a chat service may or may not have.
type Feature int

// The features the suite checks where a service has them.
const (
	Media      Feature = iota // photos and files, in and out
	Replies                   // replies to a message, in and out (quotes)
	Mentions                  // @-mentions of the account
	Typing                    // a typing indicator
	Reactions                 // reactions to a message
	RateLimits                // the service answers floods with "wait"
	Reconnect                 // the connection can drop and come back
	Revocation                // the credential can be revoked
	Acks                      // the service learns what the adapter stored
)

var featureNames = [...]string{"media", "replies", "mentions", "typing", "reactions",
	"rate limits", "reconnects", "revocation", "acknowledgements"}

// String names the feature, for a skipped check's reason.
func (f Feature) String() string {
	if int(f) < len(featureNames) {
		return featureNames[f]
	}
	return fmt.Sprintf("feature %d", int(f))
}

// Inbound is a message another member sends.
type Inbound struct {
	Chat         string
	Text         string // the text, or a medium's caption
	Media        *InMedia
	ReplyTo      string // the id of an earlier message of the chat it replies to
	MentionsSelf bool   // it @-mentions the account
}

// InMedia is a medium an Inbound carries.
type InMedia struct {
	Kind     channel.MediaKind
	MIME     string
	Data     []byte
	FileName string
}

// Outbound is one thing the service received from the adapter.
type Outbound struct {
	Kind OutKind
	Chat string
	// Text is the text sent, or a file's caption, as the service shows it:
	// formatting markup the adapter added is taken out.
	Text    string
	File    *channel.File // a file's name, kind and bytes, as the service got them (OutFile)
	ReplyTo string        // the id of the message a text quotes (OutText)
	Target  string        // the id of the message reacted to (OutReaction)
	Emoji   string        // the reaction, as the service shows it ("" removed)
	// Typing is the indicator shown or cleared (OutTyping). A service whose
	// indicator lapses unless renewed reports it cleared when it lapsed.
	Typing bool
}

// OutKind is the kind of an Outbound.
type OutKind string

// The kinds of Outbound.
const (
	OutText     OutKind = "text"
	OutFile     OutKind = "file"
	OutTyping   OutKind = "typing"
	OutReaction OutKind = "reaction"
)
