// Package doctor checks an installation of nanoclaw and says what to fix:
// one Check per thing that must hold, each with a one-line fix when it
// does not.
package doctor

// Check is one thing doctor looked at.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"` // what was found
	Fix    string `json:"fix,omitempty"`    // when not OK: what to do, in one line
}
