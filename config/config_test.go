package config

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"herald/swarm"
)

// defaults is Defaults plus the component default that Validate compares
// settings with, as cmd/herald adds it.
func defaults() Settings {
	s := Defaults()
	s.MaxNumWant = swarm.DefaultMaxNumWant
	return s
}

func TestParseFile(t *testing.T) {
	s := defaults()
	if err := s.ParseFile("testdata/herald.conf"); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	wantListens := []Listen{
		{"0.0.0.0:6969", true, true}, {"192.168.0.1:80", true, true}, {"[2001:db8::1]:6969", true, true},
		{"0.0.0.0:6969", true, false}, {"192.168.0.1:6969", false, true},
	}
	if !reflect.DeepEqual(s.Listens, wantListens) {
		t.Errorf("listens %v\nwant %v", s.Listens, wantListens)
	}
	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("UDPSockets", s.UDPSockets, 2)
	check("Blacklist", s.Blacklist, "./blacklist")
	check("StatsNets", s.StatsNets, []netip.Prefix{netip.MustParsePrefix("192.168.0.23/32"), netip.MustParsePrefix("10.0.0.0/8")})
	check("ProxyNets", s.ProxyNets, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	check("StatsPath", s.StatsPath, "secret-stats")
	check("RedirectURL", s.RedirectURL, "https://your.tracker.local/")
	check("RootDir", s.RootDir, "/var/lib/herald")
	check("User", s.User, "nobody")
	check("Interval", s.Interval, 20*time.Minute)
	check("PeerTimeout", s.PeerTimeout, time.Hour)
	check("NumWant", s.DefaultNumWant, 30)
	check("Snapshot", s.Snapshot, "")
	check("LogLevel", s.LogLevel, slog.LevelDebug)
	if len(s.Warnings) != 3 || !strings.Contains(s.Warnings[0], "herald.conf:14: livesync.cluster.listen: ignored: livesync") {
		t.Errorf("warnings %q", s.Warnings)
	}
}

// The example config shipped by Debian's opentracker package reads as is.
func TestDebianExampleConfig(t *testing.T) {
	const path = "/etc/opentracker/opentracker.conf"
	if _, err := os.Stat(path); err != nil {
		t.Skip("opentracker not installed (apt-get install opentracker; make test does)")
	}
	s := Defaults()
	if err := s.ParseFile(path); err != nil {
		t.Fatal(err)
	}
	if s.Whitelist != "/etc/opentracker/whitelist.txt" || s.RootDir != "/etc/opentracker" || s.User != "_opentracker" {
		t.Fatalf("read %+v", s)
	}
}

func TestBadLinesNameFileLineKey(t *testing.T) {
	in := "tracker.interval soon\nlisten.tcp_udp\nno.such.key 1\n# fine\naccess.stats 300.1.1.1\ntracker.numwant -5\n" +
		"tracker.http_max_connections 0\ntracker.http_idle_timeout 0s\ntracker.http_max_header_bytes 100\n"
	s := Defaults()
	err := s.Parse("bad.conf", strings.NewReader(in))
	want := []string{
		`bad.conf:1: tracker.interval: "soon" is not a positive duration`,
		`bad.conf:2: listen.tcp_udp: missing value`,
		`bad.conf:3: no.such.key: unknown directive`,
		`bad.conf:5: access.stats: "300.1.1.1" is not an address`,
		`bad.conf:6: tracker.numwant: "-5" is not a whole number`,
		`bad.conf:7: tracker.http_max_connections: "0" is not a whole number from 1 to`,
		`bad.conf:8: tracker.http_idle_timeout: "0s" is not a positive duration`,
		`bad.conf:9: tracker.http_max_header_bytes: "100" is not a whole number from 1024 to`,
	}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v\ndoes not contain %q", err, w)
		}
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.File != "bad.conf" || ce.Line != 1 || ce.Key != "tracker.interval" {
		t.Errorf("first error %+v", ce)
	}
}

func TestFlagsApplyInOrder(t *testing.T) {
	s, err := ParseArgs(defaults(), []string{"-p", "80", "-i", "127.0.0.1", "-p", "6969", "-P", "6969", "-i", "::1", "-P", "7000",
		"-A", "10.1.0.0/16", "-f", "testdata/herald.conf", "-interval", "10m"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := []Listen{{"[::]:80", true, false}, {"127.0.0.1:6969", true, false}, {"127.0.0.1:6969", false, true}, {"[::1]:7000", false, true}}
	if !reflect.DeepEqual(s.Listens[:4], want) || len(s.Listens) != 4+5 {
		t.Errorf("listens %v", s.Listens)
	}
	if s.Interval != 10*time.Minute { // the flag after -f wins
		t.Errorf("interval %v", s.Interval)
	}
	if s.Whitelist != "" || s.Blacklist != "./blacklist" {
		t.Errorf("lists %q %q", s.Whitelist, s.Blacklist)
	}
	if s.StatsNets[0] != netip.MustParsePrefix("10.1.0.0/16") || s.ProxyNets[0] != netip.MustParsePrefix("10.1.0.0/16") {
		t.Errorf("-A: stats %v proxy %v", s.StatsNets, s.ProxyNets)
	}
}

func TestValidate(t *testing.T) {
	if _, err := ParseArgs(defaults(), []string{"-w", "a", "-b", "b"}, io.Discard); err == nil {
		t.Error("whitelist and blacklist together were accepted")
	}
	s, err := ParseArgs(defaults(), nil, io.Discard)
	if err != nil || len(s.Listens) != 1 || s.Listens[0] != (Listen{DefaultListen, true, true}) {
		t.Errorf("defaults: %v %v", s, err)
	}
	if _, err := ParseArgs(defaults(), []string{"-f", "testdata/missing.conf"}, io.Discard); err == nil || !strings.Contains(err.Error(), "missing.conf") {
		t.Errorf("missing file: %v", err)
	}
}

// The HTTP frontend's bounds (issue 10) come from a config file and flags,
// and a header timeout that net/http's read timeout would cut short is
// refused. (Their defaults are httptracker's: cmd/herald's TestHelpShowsDefaults.)
func TestHTTPLimits(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "limits.conf")
	err := os.WriteFile(conf, []byte("tracker.http_max_connections 1000\ntracker.http_header_timeout 3s\ntracker.http_read_timeout 5\n"+
		"tracker.http_idle_timeout 20s\ntracker.http_write_timeout 2m\ntracker.http_max_header_bytes 4096\n"+
		"tracker.http_max_scrape_hashes 10\ntracker.http_max_full_scrapes 0\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseArgs(defaults(), []string{"-f", conf, "-http-max-connections", "2000"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got := []any{s.HTTPMaxConnections, s.HTTPReadHeaderTimeout, s.HTTPReadTimeout, s.HTTPIdleTimeout, s.HTTPWriteTimeout,
		s.HTTPMaxHeaderBytes, s.HTTPMaxScrapeHashes, s.HTTPMaxFullScrapes}
	want := []any{2000, 3 * time.Second, 5 * time.Second, 20 * time.Second, 2 * time.Minute, 4096, 10, 0}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read %v, want %v", got, want)
	}
	_, err = ParseArgs(defaults(), []string{"-http-read-timeout", "15s", "-http-header-timeout", "20s"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "tracker.http_header_timeout 20s is above tracker.http_read_timeout 15s") {
		t.Errorf("header timeout above the read timeout: %v", err)
	}
}

func TestHelpListsEveryDirective(t *testing.T) {
	var out strings.Builder
	if _, err := ParseArgs(defaults(), []string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatal(err)
	}
	for _, d := range directives {
		if !strings.Contains(out.String(), d.key) {
			t.Errorf("-h does not mention %s", d.key)
		}
	}
	if !regexp.MustCompile(`--snapshot-interval duration   \[snapshot.interval\]\n.*\(default 5m\)`).MatchString(out.String()) {
		t.Errorf("-h does not show defaults:\n%s", out.String())
	}
}

func FuzzParse(f *testing.F) {
	data, _ := os.ReadFile("testdata/herald.conf")
	f.Add(string(data))
	f.Add("listen.tcp_udp [::1\n")
	f.Fuzz(func(t *testing.T, in string) {
		s := Defaults()
		err := s.Parse("fuzz.conf", strings.NewReader(in))
		if err == nil {
			return
		}
		for _, e := range unwrapAll(err) {
			var ce *Error
			if errors.As(e, &ce) && (ce.Line < 1 || ce.File != "fuzz.conf") {
				t.Fatalf("error without a place: %v", e)
			}
		}
	})
}

func unwrapAll(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

var directiveLine = regexp.MustCompile(`^# [a-z0-9_]+\.[a-z0-9_.]+ \S`)

// The shipped example parses, and names every directive herald has.
func TestShippedExample(t *testing.T) {
	data, err := os.ReadFile("../docs/herald.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	var uncommented strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if directiveLine.MatchString(line) {
			uncommented.WriteString(line[2:] + "\n")
		}
	}
	s := Defaults()
	if err := s.Parse("herald.conf.example", strings.NewReader(uncommented.String())); err != nil {
		t.Fatal(err)
	}
	for _, d := range directives {
		if !strings.Contains(string(data), d.key+" ") {
			t.Errorf("example does not show %s", d.key)
		}
	}
}

// Issue 14 item 13: NaN compares false with every bound, so a range check
// let it through; every float setting must refuse non-finite values, in a
// file (naming file, line and key) and as a flag.
func TestNonFiniteRatesRefused(t *testing.T) {
	var floats []string
	for _, d := range directives {
		s := Defaults()
		// A float setting reads "1.5e0" and shows it as "1.5".
		if d.def != nil && d.set(&s, "1.5e0") == nil && d.def(&s) == "1.5" {
			floats = append(floats, d.key)
		}
	}
	for _, key := range []string{"tracker.rate_limit", "websocket.message_rate"} {
		if !slices.Contains(floats, key) {
			t.Errorf("%s not found among the float settings %v", key, floats)
		}
	}
	for _, key := range floats {
		for _, v := range []string{"NaN", "nan", "Inf", "+Inf", "-Inf", "infinity", "1e400"} {
			s := Defaults()
			err := s.Parse("rates.conf", strings.NewReader("# rates\n"+key+" "+v+"\n"))
			if want := "rates.conf:2: " + key + ": "; err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Errorf("%s %s: error %v, want one starting %q", key, v, err, want)
			}
			flagName := lookup(key).flag
			if _, err := ParseArgs(defaults(), []string{"-" + flagName, v}, io.Discard); err == nil {
				t.Errorf("-%s %s accepted", flagName, v)
			}
		}
	}
}
