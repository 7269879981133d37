package stats

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Mode is a /stats mode, opentracker's mode= parameter.
type Mode uint8

// The modes herald serves. ModePeer is the default, as in opentracker.
const (
	ModePeer Mode = iota
	ModeConn
	ModeScrape
	ModeUDP4
	ModeTCP4
	ModeTorrents
	ModeFullScrape
	ModeCompleted
	ModeTop10
	ModeTop100
	ModeEverything
	ModeVersion
	ModeBusy
	ModeHTTPErrors
	ModeTPBS
	ModeStatedump
	ModeSubnets
	ModeRenew
	numModes
)

var modeNames = [numModes]string{
	ModePeer:       "peer",
	ModeConn:       "conn",
	ModeScrape:     "scrp",
	ModeUDP4:       "udp4",
	ModeTCP4:       "tcp4",
	ModeTorrents:   "torr",
	ModeFullScrape: "fscr",
	ModeCompleted:  "completed",
	ModeTop10:      "top10",
	ModeTop100:     "top100",
	ModeEverything: "everything",
	ModeVersion:    "version",
	ModeBusy:       "busy",
	ModeHTTPErrors: "herr",
	ModeTPBS:       "tpbs",
	ModeStatedump:  "statedump",
	ModeSubnets:    "s24s",
	ModeRenew:      "renew",
}

// String returns the mode's query value.
func (m Mode) String() string {
	if m < numModes {
		return modeNames[m]
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// Errors of ParseQuery; both are answered with 400.
var (
	// ErrInfoHash: the stats URL was used as an announce URL (opentracker
	// refuses any info_hash parameter here).
	ErrInfoHash = errors.New("stats: info_hash given: this is the stats page, not an announce URL")
	// ErrUnknownMode wraps the mode= value no mode has.
	ErrUnknownMode = errors.New("stats: unknown mode")
)

// ParseQuery reads a /stats query string: mode= picks the output (the
// last one wins) and every other parameter except info_hash is ignored, as
// opentracker does.
func ParseQuery(rawQuery string) (Mode, error) {
	mode := ModePeer
	var unknown string
	bad := false
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		rawKey, rawValue, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(rawKey)
		if err != nil {
			continue // a parameter we could not read cannot be mode or info_hash
		}
		switch key {
		case "info_hash":
			return 0, ErrInfoHash
		case "mode":
			value, err := url.QueryUnescape(rawValue)
			if err != nil {
				value = rawValue
			}
			unknown, bad = value, true
			for m, name := range modeNames {
				if value == name {
					mode, bad = Mode(m), false
					break
				}
			}
		}
	}
	if bad {
		return 0, fmt.Errorf("%w %q", ErrUnknownMode, unknown)
	}
	return mode, nil
}

// Format is mode=tpbs's format= parameter: one record per torrent.
type Format uint8

// The tpbs formats, as opentracker names them; FormatBinary is the default.
const (
	FormatBinary   Format = iota // bin: hash, seeders and leechers as uint32 big-endian
	FormatBencoded               // ben: the full scrape's dictionary
	FormatText                   // txt: HEX:seeders:leechers
	FormatTextPlus               // txtp: HEX:seeders:leechers:downloaded
	FormatURL                    // url: %xx-escaped hash:seeders:leechers
	numFormats
)

var formatNames = [numFormats]string{"bin", "ben", "txt", "txtp", "url"}

// ParseFormat reads format= from a /stats query (the last one wins); an
// absent or unknown format is FormatBinary, as in opentracker.
func ParseFormat(rawQuery string) Format {
	f := FormatBinary
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		if value, ok := strings.CutPrefix(pair, "format="); ok {
			for i, name := range formatNames {
				if value == name {
					f = Format(i)
				}
			}
		}
	}
	return f
}

// ModeList is the modes herald serves, for the 400 an unknown mode gets.
func ModeList() string { return strings.Join(modeNames[:], " ") }
