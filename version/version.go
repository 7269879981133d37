// Package version names a herald build: the release and the commit it was
// built from. The commit comes from the build information the Go toolchain
// embeds (runtime/debug.ReadBuildInfo: vcs.revision, vcs.time,
// vcs.modified), so a binary built from any checkout says what it is
// without a linker flag; `go build` outside a checkout, or with
// -buildvcs=false, leaves the commit out.
package version

import (
	"regexp"
	"runtime/debug"
	"strings"
)

// Release is the version of the release this tree leads to.
const Release = "0.2.0"

// Info describes one build.
type Info struct {
	Release   string // Release, or the module version when built by `go install herald@vX`
	Revision  string // VCS commit, empty when unknown
	Time      string // commit time (RFC 3339), empty when unknown
	Modified  bool   // the work tree had uncommitted changes
	GoVersion string // the toolchain that built it
}

// Read returns this binary's Info.
func Read() Info {
	info := Info{Release: Release}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	info.GoVersion = bi.GoVersion
	if v := bi.Main.Version; isRelease(v) {
		info.Release = strings.TrimPrefix(v, "v")
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// pseudoVersion matches the versions the go command makes up from a commit
// (v0.0.0-20261207094806-34deeba46a4f, v1.2.4-0.2026…, with +dirty for a
// modified tree): they say less than Release and the commit already do.
var pseudoVersion = regexp.MustCompile(`[-.]\d{14}-[0-9a-f]{12}(\+dirty)?$|\+dirty$`)

// isRelease reports whether a module version names a tagged release.
func isRelease(v string) bool {
	return v != "" && v != "(devel)" && !pseudoVersion.MatchString(v)
}

// String is the one line -v prints, for example
// "herald 0.2.0 (commit 0123456789ab, 2026-12-07T09:00:00Z, modified; go1.26.8)".
func (i Info) String() string {
	var b strings.Builder
	b.WriteString("herald ")
	b.WriteString(i.Release)
	b.WriteString(" (commit ")
	if i.Revision == "" {
		b.WriteString("unknown")
	} else {
		b.WriteString(i.ShortRevision())
	}
	if i.Time != "" {
		b.WriteString(", ")
		b.WriteString(i.Time)
	}
	if i.Modified {
		b.WriteString(", modified")
	}
	if i.GoVersion != "" {
		b.WriteString("; ")
		b.WriteString(i.GoVersion)
	}
	b.WriteString(")")
	return b.String()
}

// ShortRevision is the commit cut to 12 hex digits, as git shows it.
func (i Info) ShortRevision() string {
	if len(i.Revision) > 12 {
		return i.Revision[:12]
	}
	return i.Revision
}
