//go:build !(linux && (amd64 || arm64))

package skills

// exchange has no atomic form here: Stage falls back to two renames.
func exchange(a, b string) error { return errNoExchange }
