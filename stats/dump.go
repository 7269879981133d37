package stats

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"herald/bencode"
	"herald/swarm"
)

// The modes that walk the whole store (tpbs, statedump, s24s) stream their
// output: Range and Dump copy one shard at a time under its lock and write
// with no lock held, so a slow reader never holds up announces.

// serveTPBS answers mode=tpbs: one record per torrent in the format asked
// for (opentracker's full-scrape dumps for The Pirate Bay's scrapers).
func (m *Monitor) serveTPBS(w http.ResponseWriter, f Format) {
	contentType := "text/plain; charset=utf-8"
	if f == FormatBinary || f == FormatBencoded {
		contentType = "application/octet-stream"
	}
	bw := startStream(w, contentType)
	var rec []byte
	if f == FormatBencoded {
		bw.WriteString("d5:filesd")
	}
	m.store.Range(func(tc swarm.TorrentCounts) bool {
		rec = appendTPBSRecord(rec[:0], f, &tc)
		_, err := bw.Write(rec)
		return err == nil
	})
	if f == FormatBencoded {
		bw.WriteString("ee")
	}
	bw.Flush()
}

func appendTPBSRecord(dst []byte, f Format, tc *swarm.TorrentCounts) []byte {
	c := &tc.Counts
	switch f {
	case FormatBencoded:
		dst = bencode.AppendBytes(dst, tc.InfoHash[:])
		dst = append(dst, "d8:completei"...)
		dst = strconv.AppendUint(dst, uint64(c.Seeders), 10)
		dst = append(dst, "e10:downloadedi"...)
		dst = strconv.AppendUint(dst, uint64(c.Completed), 10)
		dst = append(dst, "e10:incompletei"...)
		dst = strconv.AppendUint(dst, uint64(c.Leechers), 10)
		return append(dst, "ee"...)
	case FormatBinary:
		dst = append(dst, tc.InfoHash[:]...)
		dst = binary.BigEndian.AppendUint32(dst, c.Seeders)
		return binary.BigEndian.AppendUint32(dst, c.Leechers)
	case FormatURL:
		for _, b := range tc.InfoHash {
			dst = append(dst, '%', hexUpper[b>>4], hexUpper[b&15])
		}
	default:
		dst = hex.AppendEncode(dst, tc.InfoHash[:])
	}
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, uint64(c.Seeders), 10)
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, uint64(c.Leechers), 10)
	if f == FormatTextPlus {
		dst = append(dst, ':')
		dst = strconv.AppendUint(dst, uint64(c.Completed), 10)
	}
	return append(dst, '\n')
}

const hexUpper = "0123456789ABCDEF"

// serveStatedump answers mode=statedump: HEXHASH:base_minute:downloaded
// per torrent, the file opentracker's -l (and herald's) imports. herald
// keeps no per-torrent base minute, so that field is 0; importers use the
// downloaded count only.
func (m *Monitor) serveStatedump(w http.ResponseWriter) {
	bw := startStream(w, "text/plain; charset=utf-8")
	var rec []byte
	m.store.Range(func(tc swarm.TorrentCounts) bool {
		rec = hex.AppendEncode(rec[:0], tc.InfoHash[:])
		rec = append(rec, ":0:"...)
		rec = strconv.AppendUint(rec, uint64(tc.Completed), 10)
		rec = append(rec, '\n')
		_, err := bw.Write(rec)
		return err == nil
	})
	bw.Flush()
}

// maxSubnets is how many networks mode=s24s lists of each size.
const maxSubnets = 100

// serveSubnets answers mode=s24s: the IPv4 /24 and /28 networks with the
// most peers, busiest first, as "%08d: network" lines under a heading for
// each size. It walks every peer.
func (m *Monitor) serveSubnets(w http.ResponseWriter) {
	by24, by28 := map[[3]byte]int{}, map[[4]byte]int{}
	m.store.Dump(func(ts *swarm.TorrentState) error {
		for _, p := range ts.Peers {
			if a := p.Addr.Addr(); a.Is4() {
				b := a.As4()
				by24[[3]byte{b[0], b[1], b[2]}]++
				by28[[4]byte{b[0], b[1], b[2], b[3] &^ 15}]++
			}
		}
		return nil
	})
	bw := startStream(w, "text/plain; charset=utf-8")
	bw.WriteString("Busiest IPv4 /24 networks by peers:\n")
	writeSubnets(bw, by24, func(k [3]byte) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{k[0], k[1], k[2], 0}), 24)
	})
	bw.WriteString("\nBusiest IPv4 /28 networks by peers:\n")
	writeSubnets(bw, by28, func(k [4]byte) netip.Prefix { return netip.PrefixFrom(netip.AddrFrom4(k), 28) })
	bw.Flush()
}

func writeSubnets[K comparable](bw *bufio.Writer, counts map[K]int, prefix func(K) netip.Prefix) {
	type row struct {
		net   netip.Prefix
		peers int
	}
	rows := make([]row, 0, len(counts))
	for k, n := range counts {
		rows = append(rows, row{prefix(k), n})
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(b.peers, a.peers), a.net.Addr().Compare(b.net.Addr()))
	})
	for _, r := range rows[:min(len(rows), maxSubnets)] {
		fmt.Fprintf(bw, "%08d: %s\n", r.peers, r.net)
	}
}

// startStream writes the headers of a streamed stats reply and returns a
// buffered writer for its body.
func startStream(w http.ResponseWriter, contentType string) *bufio.Writer {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return bufio.NewWriterSize(w, 64<<10)
}
