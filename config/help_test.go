package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Mistyped flags and directives name the one meant.
func TestDidYouMean(t *testing.T) {
	_, err := ParseArgs(defaults(), []string{"-log-jsn"}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "did you mean --log-json?") || !strings.Contains(err.Error(), "herald -h") {
		t.Errorf("-log-jsn: %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "herald.conf")
	os.WriteFile(conf, []byte("tracker.intervall 5m\n"), 0o644)
	_, err = ParseArgs(defaults(), []string{"-f", conf}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), conf+":1: tracker.intervall: unknown directive (did you mean tracker.interval?)") {
		t.Errorf("tracker.intervall: %v", err)
	}
	_, err = ParseArgs(defaults(), []string{"-xyzzy"}, &bytes.Buffer{})
	if err == nil || strings.Contains(err.Error(), "did you mean") {
		t.Errorf("-xyzzy suggests something: %v", err)
	}
}

// A true/false setting alone means true, and GNU-style --flag=value works.
func TestBareBooleansAndDoubleDash(t *testing.T) {
	s, err := ParseArgs(defaults(), []string{"-log-json", "--allow-ip-field", "--ws-on-http=false", "--interval=10m"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.LogJSON || !s.AllowIPField || s.WSOnHTTP || s.Interval.Minutes() != 10 {
		t.Errorf("log json %v, allow ip field %v, ws on http %v, interval %v", s.LogJSON, s.AllowIPField, s.WSOnHTTP, s.Interval)
	}
}

// -h goes to the writer given (stdout in herald), grouped by section,
// with the machine's figure beside a default computed from it.
func TestHelp(t *testing.T) {
	var out bytes.Buffer
	if _, err := ParseArgs(defaults(), []string{"-h"}, &out); err != flag.ErrHelp {
		t.Fatalf("-h: %v", err)
	}
	h := out.String()
	last := -1
	for _, sec := range sections {
		i := strings.Index(h, "\n"+sec.title+":\n")
		if i < last {
			t.Errorf("section %q missing or out of order", sec.title)
		}
		last = i
	}
	if !regexp.MustCompile(`--max-torrents n .*\n.*a quarter of the memory.*\(default here \d+\)`).MatchString(h) {
		t.Errorf("-h does not show the rule and this machine's figure for --max-torrents:\n%s", h)
	}
	if !regexp.MustCompile(`--access-reload duration .*\n.*\(default 5s\)`).MatchString(h) {
		t.Errorf("-h does not print --access-reload's default as 5s")
	}
}
