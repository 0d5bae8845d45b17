package whatsapp

import "github.com/nanoclaw/nanoclaw/internal/channel"

// MaxMessageRunes is the longest text Send puts in one WhatsApp message.
// WhatsApp accepts longer messages, but its apps fold them behind "Read
// more" and older clients truncate; 4000 characters keeps each part whole.
const MaxMessageRunes = 4000

// SplitText cuts text into parts of at most max characters each (max < 1
// means MaxMessageRunes), as channel.SplitText does.
func SplitText(text string, max int) []string {
	if max < 1 {
		max = MaxMessageRunes
	}
	return channel.SplitText(text, max, func(rune) int { return 1 })
}
