package protocol

import (
	"runtime/debug"
	"sync"
)

// ModulePath is the banfleet module's path.
const ModulePath = "github.com/banfleet/banfleet"

// BuildVersion is the version of the banfleet module the running program was built
// with, as the Go toolchain recorded it: a tag such as "v0.3.1" for a program that
// requires a release, or, for a build of a checkout, "(devel)" followed by the
// commit (its first 12 hex digits, "+dirty" when the tree had changes) when the
// toolchain stamped one. "unknown" when the program carries no build information (a
// test binary, say). Workers announce it (WorkerInfo.Version) so that a status page
// shows which fleet members run older code.
var BuildVersion = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	version := ""
	if bi.Main.Path == ModulePath {
		version = bi.Main.Version
	} else {
		for _, d := range bi.Deps {
			if d.Path == ModulePath {
				version = d.Version
				if d.Replace != nil && d.Replace.Version != "" {
					version = d.Replace.Version
				}
			}
		}
	}
	if version == "" {
		return "unknown"
	}
	if version == "(devel)" {
		var rev, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			version += " " + rev + dirty
		}
	}
	return version
})
