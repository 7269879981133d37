// Package bencode implements the encoding of BEP 3 ("The BitTorrent Protocol
// Specification", section "bencoding").
//
// The encoder has the shape of strconv.AppendInt: every Append function takes
// a destination buffer, appends one encoded value and returns the extended
// buffer, so a server can encode a reply into a pooled buffer with no
// allocation. Dictionaries are written by hand as 'd', key/value pairs, 'e';
// BEP 3 requires keys in sorted order (raw byte strings), and callers write
// them sorted by construction. BitTornado rejects unsorted keys (chihaya#520).
//
// The decoder is strict and meant for tests and clients: Decode accepts only
// canonical bencoding, the one encoding the Append functions produce, so a
// decoded value re-encodes to the same bytes.
package bencode
