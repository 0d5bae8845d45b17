package ipc

import (
	"fmt"
	"strings"
)

// MaxModelLen bounds a model name: the API's ids are a few dozen bytes.
const MaxModelLen = 100

// ValidateModel checks the form of a Claude model name, as a group's
// setting, the MODEL setting and nanoclaw-agent run's --model carry it. It
// becomes an argument of Claude Code and a value the gateway prices usage
// by, so it is a plain word: letters, digits and "-._:@[]" (ids such as
// claude-sonnet-4-5-20250929, a provider's us.anthropic.…:0, a [1m]
// suffix), starting with a letter or digit so it can never read as a flag.
// Whether the upstream knows it is the owner's CLI's check (groups set).
func ValidateModel(name string) error {
	if name == "" || len(name) > MaxModelLen {
		return fmt.Errorf("model %q: want 1 to %d characters, like claude-sonnet-4-5", name, MaxModelLen)
	}
	for i, r := range name {
		ok := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || (i > 0 && strings.ContainsRune("-._:@[]", r))
		if !ok {
			return fmt.Errorf("model %q: character %q at byte %d is not allowed (letters, digits and -._:@[], starting with a letter or digit)", name, r, i)
		}
	}
	return nil
}
