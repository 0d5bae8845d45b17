package telegram

import (
	"strings"

	"github.com/nanoclaw/nanoclaw/internal/channel"
)

// MaxMessageUnits is the longest text of one Telegram message: 4096
// characters as Telegram counts them, in UTF-16 code units (an emoji
// outside the BMP is two).
const MaxMessageUnits = 4096

// maxCaptionUnits is the longest caption of a file.
const maxCaptionUnits = 1024

// SplitText cuts text into parts of at most max UTF-16 units each (max < 1
// means MaxMessageUnits), as channel.SplitText does.
//
// The Markdown of a part is converted after the cut, and the markers it
// drops only make it shorter, so a converted part fits too.
func SplitText(text string, max int) []string {
	if max < 1 {
		max = MaxMessageUnits
	}
	return channel.SplitText(text, max, runeUnits)
}

// units is the length of s in UTF-16 code units.
func units(s string) int {
	n := 0
	for _, r := range s {
		n += runeUnits(r)
	}
	return n
}

func runeUnits(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// reopenFences makes each part's fenced code blocks whole for conversion:
// a part that ends inside a block gets it closed, and the next part opens
// it again. Only the converted text changes: the markers are not shown.
func reopenFences(parts []string) []string {
	out := make([]string, len(parts))
	open := false
	for i, p := range parts {
		if open {
			p = "```\n" + p
		}
		open = false
		for _, line := range strings.Split(p, "\n") {
			if open && isFence(line) {
				open = false
			} else if _, ok := fenceOpen(line); ok && !open {
				open = true
			}
		}
		if open {
			p += "\n```"
		}
		out[i] = p
	}
	return out
}
