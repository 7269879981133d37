package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"herald/config"
	"herald/version"
)

var update = flag.Bool("update", false, "rewrite dist/herald.8 from the settings table")

// manPage is herald(8) as shipped.
var manPage = filepath.Join("..", "..", "dist", "herald.8")

// dist/herald.8 is what config.WriteManPage makes of the settings table
// and herald's defaults now (go test ./cmd/herald -run ManPage -update
// rewrites it), and it documents every flag and directive -h prints.
func TestManPageMatchesHelp(t *testing.T) {
	s := defaultSettings()
	var gen bytes.Buffer
	config.WriteManPage(&gen, "herald "+version.Release, &s)
	if *update {
		if err := os.WriteFile(manPage, gen.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shipped, err := os.ReadFile(manPage)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(shipped, gen.Bytes()) {
		t.Fatalf("%s is stale: the settings changed; run go test ./cmd/herald -run ManPage -update", manPage)
	}
	var help bytes.Buffer
	if _, err := config.ParseArgs(defaultSettings(), []string{"-h"}, &help); err != flag.ErrHelp {
		t.Fatalf("-h: %v", err)
	}
	man := strings.ReplaceAll(string(shipped), `\-`, "-")
	names := regexp.MustCompile(`(?m)^  (--?[A-Za-z][\w-]*)[^\[\n]*(?:\[([a-z_.]+)\])?`).FindAllStringSubmatch(help.String(), -1)
	if len(names) < 50 {
		t.Fatalf("found %d settings in -h, expected every one:\n%s", len(names), help.String())
	}
	for _, m := range names {
		for _, want := range m[1:] {
			if want != "" && !strings.Contains(man, want) {
				t.Errorf("-h prints %s but %s does not document it", want, manPage)
			}
		}
	}
}
