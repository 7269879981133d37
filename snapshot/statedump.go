package snapshot

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"herald/swarm"
)

// ImportStatedump reads an opentracker state dump (its /stats?mode=statedump
// output, the file its -l flag loads): one torrent per line as
// HEXHASH:base_minute:downloaded. Only the completed counts carry over, as in
// opentracker; peers were never in the dump. A malformed line is an error
// naming its number, and nothing after it is imported.
func ImportStatedump(r io.Reader, store *swarm.Store) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), 4096)
	n := 0
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		ts, err := parseStatedumpLine(text)
		if err != nil {
			return n, fmt.Errorf("statedump line %d: %w", line, err)
		}
		if _, err := store.Restore(&ts); err != nil {
			return n, fmt.Errorf("statedump line %d: %w", line, err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("statedump: %w", err)
	}
	return n, nil
}

func parseStatedumpLine(s string) (swarm.TorrentState, error) {
	var ts swarm.TorrentState
	hash, rest, ok := strings.Cut(s, ":")
	_, downloaded, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || len(hash) != 40 {
		return ts, fmt.Errorf("%q: want HEXHASH:base_minute:downloaded", s)
	}
	if _, err := hex.Decode(ts.InfoHash[:], []byte(hash)); err != nil {
		return ts, fmt.Errorf("info hash %q: %w", hash, err)
	}
	d, err := strconv.ParseUint(downloaded, 10, 32)
	if err != nil {
		return ts, fmt.Errorf("downloaded count %q: %w", downloaded, err)
	}
	ts.Completed = uint32(d)
	return ts, nil
}
