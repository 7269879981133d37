// Command herald is a BitTorrent tracker: HTTP and UDP announce and scrape,
// IPv4 and IPv6 in one process, everything in RAM.
//
// With no arguments it serves a public tracker on port 6969, TCP and UDP,
// dual stack. It reads opentracker's flags and config file (-f); herald -h
// lists every setting.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"

	"herald/config"
	"herald/version"
)

func main() {
	s, err := config.ParseArgs(defaultSettings(), os.Args[1:], os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "herald:", err)
		os.Exit(2)
	}
	if s.ShowVersion {
		fmt.Println(version.Read())
		return
	}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: s.LogLevel})
	if s.LogJSON {
		h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: s.LogLevel})
	}
	log := slog.New(h)
	for _, w := range s.Warnings {
		log.Warn(w)
	}
	if err := run(s, log); err != nil {
		log.Error("herald stopped", "err", err)
		os.Exit(1)
	}
}
