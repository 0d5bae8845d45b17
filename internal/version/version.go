// Package version is nanoclaw's version, as the build stamped it.
package version

import "runtime/debug"

// Version is set at build time (-ldflags "-X
// github.com/nanoclaw/nanoclaw/internal/version.Version=…"); "dev" otherwise.
var Version = "dev"

// Revision is the commit the binary was built from, as Go recorded it
// ("commit 0123456789ab", "+changes" when the tree had uncommitted changes),
// or "unknown commit".
func Revision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown commit"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+changes"
			}
		}
	}
	if rev == "" {
		return "unknown commit"
	}
	return "commit " + rev[:min(len(rev), 12)] + dirty
}
