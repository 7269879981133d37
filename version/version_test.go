package version

import "testing"

func TestString(t *testing.T) {
	cases := []struct {
		info Info
		want string
	}{
		{Info{Release: "0.2.0"}, "herald 0.2.0 (commit unknown)"},
		{Info{Release: "0.2.0", Revision: "0123456789abcdef0123", Time: "2026-12-07T09:00:00Z", Modified: true, GoVersion: "go1.26.8"},
			"herald 0.2.0 (commit 0123456789ab, 2026-12-07T09:00:00Z, modified; go1.26.8)"},
		{Info{Release: "1.0.0", Revision: "abc", GoVersion: "go1.26.8"}, "herald 1.0.0 (commit abc; go1.26.8)"},
	}
	for _, c := range cases {
		if got := c.info.String(); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.info, got, c.want)
		}
	}
}

// A test binary carries build information without VCS settings: Read must
// still name the release and the toolchain.
func TestReadInTestBinary(t *testing.T) {
	info := Read()
	if info.Release != Release || info.GoVersion == "" {
		t.Fatalf("Read() = %+v, want release %s and a Go version", info, Release)
	}
}

// go build in a clone stamps a pseudo-version made from the commit; only a
// tagged module version (go install herald@v1.0.0) replaces Release.
func TestIsRelease(t *testing.T) {
	for v, want := range map[string]bool{
		"":                                     false,
		"(devel)":                              false,
		"v0.0.0-20261207094806-34deeba46a4f":   false,
		"v0.2.1-0.20261207094806-34deeba46a4f": false,
		"v0.0.0-20261207094806-34deeba46a4f+dirty": false,
		"v1.0.0+dirty": false,
		"v1.0.0":       true,
		"v0.2.0-rc.1":  true,
	} {
		if got := isRelease(v); got != want {
			t.Errorf("isRelease(%q) = %v, want %v", v, got, want)
		}
	}
}
