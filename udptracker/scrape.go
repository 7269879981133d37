package udptracker

import (
	"encoding/binary"

	"herald/swarm"
)

// Scrape request (BEP 15):
//
//	Offset          Size            Name            Value
//	0               64-bit integer  connection_id
//	8               32-bit integer  action          2 // scrape
//	12              32-bit integer  transaction_id
//	16 + 20 * n     20-byte string  info_hash
//	16 + 20 * N
//
// Scrape response:
//
//	Offset      Size            Name            Value
//	0           32-bit integer  action          2 // scrape
//	4           32-bit integer  transaction_id
//	8 + 12 * n  32-bit integer  seeders
//	12 + 12 * n 32-bit integer  completed
//	16 + 12 * n 32-bit integer  leechers
//	8 + 12 * N
const scrapeEntryLen = 12

// MaxScrapeHashes is the most info hashes one scrape may carry. BEP 15
// says "up to about 74 torrents can be scraped at once": 16 + 74*20 = 1496
// bytes, the largest request that fits a 1500-byte Ethernet MTU once IP
// and UDP headers are counted as the BEP does. opentracker accepts 75 (1516
// bytes, which already needs fragmentation over IPv4 and is beyond what any
// client sends), so we keep to the BEP's number.
const MaxScrapeHashes = 74

// ScrapeRequest is a parsed scrape. The server reuses one per socket, so
// InfoHashes keeps its capacity.
type ScrapeRequest struct {
	ConnectionID  uint64
	TransactionID uint32
	InfoHashes    []swarm.InfoHash
}

// ParseScrapeRequest reads a scrape into r. A body longer than
// MaxScrapeHashes hashes fails with ErrTooManyHashes (before any hash is
// copied), a shorter one that is not a whole number of hashes with
// ErrScrapeLength.
func ParseScrapeRequest(b []byte, r *ScrapeRequest) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if h.Action != ActionScrape {
		return ErrAction
	}
	body := b[requestHeaderLen:]
	if len(body) > MaxScrapeHashes*len(swarm.InfoHash{}) {
		return ErrTooManyHashes // ragged or not: a datagram cut at the read buffer is both
	}
	if len(body)%len(swarm.InfoHash{}) != 0 {
		return ErrScrapeLength
	}
	r.ConnectionID = h.ConnectionID
	r.TransactionID = h.TransactionID
	r.InfoHashes = r.InfoHashes[:0]
	for ; len(body) > 0; body = body[len(swarm.InfoHash{}):] {
		r.InfoHashes = append(r.InfoHashes, swarm.InfoHash(body))
	}
	return nil
}

// AppendScrapeRequest appends r in wire form to dst.
func AppendScrapeRequest(dst []byte, r *ScrapeRequest) []byte {
	dst = appendRequestHeader(dst, Header{ConnectionID: r.ConnectionID, Action: ActionScrape, TransactionID: r.TransactionID})
	for _, h := range r.InfoHashes {
		dst = append(dst, h[:]...)
	}
	return dst
}

// ScrapeResponse answers a scrape, one entry per requested hash in request
// order; an unknown torrent is all zeros.
type ScrapeResponse struct {
	TransactionID uint32
	Torrents      []swarm.Counts
}

// ParseScrapeResponse reads a scrape response into r, reusing r.Torrents.
func ParseScrapeResponse(b []byte, r *ScrapeResponse) error {
	tid, err := parseResponseHeader(b, ActionScrape)
	if err != nil {
		return err
	}
	body := b[responseHeaderLen:]
	if len(body)%scrapeEntryLen != 0 {
		return ErrResponseLength
	}
	r.TransactionID = tid
	r.Torrents = r.Torrents[:0]
	for ; len(body) > 0; body = body[scrapeEntryLen:] {
		r.Torrents = append(r.Torrents, swarm.Counts{
			Seeders:   binary.BigEndian.Uint32(body),
			Completed: binary.BigEndian.Uint32(body[4:]),
			Leechers:  binary.BigEndian.Uint32(body[8:]),
		})
	}
	return nil
}

// AppendScrapeResponse appends r in wire form to dst.
func AppendScrapeResponse(dst []byte, r *ScrapeResponse) []byte {
	dst = appendResponseHeader(dst, ActionScrape, r.TransactionID)
	for _, c := range r.Torrents {
		dst = binary.BigEndian.AppendUint32(dst, c.Seeders)
		dst = binary.BigEndian.AppendUint32(dst, c.Completed)
		dst = binary.BigEndian.AppendUint32(dst, c.Leechers)
	}
	return dst
}
