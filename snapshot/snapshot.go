// Package snapshot saves the whole swarm store to a file and restores it, so
// that a restart keeps every swarm.
//
// File layout (all integers big-endian unless marked uvarint):
//
//	header   magic "HRLDSNAP" | version u16 | reserved u16 | created unix seconds i64
//	torrent  info hash [20] | completed uvarint | idle seconds uvarint |
//	         IPv4 peers uvarint | IPv6 peers uvarint | peers…
//	peer     address [4 or 16] | port u16 | flags u8 | age seconds uvarint
//	trailer  marker "SNAPEND!" | torrents u64 | peers u64 | CRC-32C u32 of all bytes before it
//
// A file is written to a temporary name beside the target, synced and
// renamed, so a crash mid-write leaves the previous snapshot whole.
package snapshot

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"herald/swarm"
)

// Version is the format version this package writes and reads.
const Version = 1

var (
	magic     = []byte("HRLDSNAP")
	endMarker = []byte("SNAPEND!")
	crcTable  = crc32.MakeTable(crc32.Castagnoli)
)

const (
	headerLen  = 8 + 2 + 2 + 8
	trailerLen = 8 + 8 + 8 + 4
)

// Peer flags on disk.
const (
	flagSeeder    = 1 << 0
	flagCompleted = 1 << 1
	flagSynced    = 1 << 2
	flagIPv6      = 1 << 7
)

// Errors of Decode; every decode error wraps ErrCorrupt or ErrVersion.
var (
	ErrCorrupt = errors.New("snapshot: corrupt file")
	ErrVersion = errors.New("snapshot: unsupported version")
)

// Info describes a snapshot written or read.
type Info struct {
	Created  time.Time
	Torrents int
	Peers    int
	Bytes    int64
}

// Source is where Encode gets torrents from; *swarm.Store satisfies it.
type Source interface {
	Dump(fn func(*swarm.TorrentState) error) error
}

// Encode writes a snapshot of src to w.
func Encode(w io.Writer, src Source, created time.Time) (Info, error) {
	crc := crc32.New(crcTable)
	cw := &countWriter{w: io.MultiWriter(w, crc)}
	bw := bufio.NewWriterSize(cw, 1<<16)
	info := Info{Created: created}

	var hdr [headerLen]byte
	copy(hdr[:], magic)
	binary.BigEndian.PutUint16(hdr[8:], Version)
	binary.BigEndian.PutUint64(hdr[12:], uint64(created.Unix()))
	bw.Write(hdr[:])

	var buf []byte
	err := src.Dump(func(ts *swarm.TorrentState) error {
		buf = buf[:0]
		buf = append(buf, ts.InfoHash[:]...)
		buf = binary.AppendUvarint(buf, uint64(ts.Completed))
		buf = binary.AppendUvarint(buf, uint64(ts.Idle/time.Second))
		n4 := 0
		for _, p := range ts.Peers {
			if p.Addr.Addr().Is4() {
				n4++
			}
		}
		buf = binary.AppendUvarint(buf, uint64(n4))
		buf = binary.AppendUvarint(buf, uint64(len(ts.Peers)-n4))
		for pass := range 2 { // IPv4 peers first, as counted
			for _, p := range ts.Peers {
				if p.Addr.Addr().Is4() != (pass == 0) {
					continue
				}
				if a := p.Addr.Addr(); a.Is4() {
					ip := a.As4()
					buf = append(buf, ip[:]...)
				} else {
					ip := a.As16()
					buf = append(buf, ip[:]...)
				}
				buf = binary.BigEndian.AppendUint16(buf, p.Addr.Port())
				var f byte
				if p.Seeder {
					f |= flagSeeder
				}
				if p.Completed {
					f |= flagCompleted
				}
				if p.Synced {
					f |= flagSynced
				}
				buf = append(buf, f)
				buf = binary.AppendUvarint(buf, uint64(p.Age/time.Second))
			}
		}
		info.Torrents++
		info.Peers += len(ts.Peers)
		_, err := bw.Write(buf)
		return err
	})
	if err != nil {
		return info, fmt.Errorf("snapshot: encode: %w", err)
	}
	var tr [trailerLen - 4]byte
	copy(tr[:], endMarker)
	binary.BigEndian.PutUint64(tr[8:], uint64(info.Torrents))
	binary.BigEndian.PutUint64(tr[16:], uint64(info.Peers))
	bw.Write(tr[:])
	if err := bw.Flush(); err != nil {
		return info, fmt.Errorf("snapshot: encode: %w", err)
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], crc.Sum32())
	if _, err := w.Write(sum[:]); err != nil {
		return info, fmt.Errorf("snapshot: encode: %w", err)
	}
	info.Bytes = cw.n + 4
	return info, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Decode checks data whole (magic, version, checksum, counts) before it
// calls fn for any torrent, so a damaged file restores nothing. Ages and idle
// times in the TorrentState passed to fn are as of the snapshot's creation;
// fn must not keep it.
func Decode(data []byte, fn func(*swarm.TorrentState) error) (Info, error) {
	var info Info
	if len(data) < headerLen+trailerLen || !bytes.Equal(data[:8], magic) {
		return info, fmt.Errorf("%w: not a herald snapshot or truncated header", ErrCorrupt)
	}
	if v := binary.BigEndian.Uint16(data[8:]); v != Version {
		return info, fmt.Errorf("%w %d (this herald reads version %d)", ErrVersion, v, Version)
	}
	info.Created = time.Unix(int64(binary.BigEndian.Uint64(data[12:])), 0)
	info.Bytes = int64(len(data))
	body, tr := data[:len(data)-4], data[len(data)-trailerLen:]
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(data[len(data)-4:]) {
		return info, fmt.Errorf("%w: checksum mismatch (truncated or damaged)", ErrCorrupt)
	}
	if !bytes.Equal(tr[:8], endMarker) {
		return info, fmt.Errorf("%w: missing end marker", ErrCorrupt)
	}
	wantTorrents, wantPeers := binary.BigEndian.Uint64(tr[8:]), binary.BigEndian.Uint64(tr[16:])

	// Two passes: validate everything, then hand out torrents.
	for pass := range 2 {
		d := decoder{b: data[headerLen : len(data)-trailerLen]}
		var ts swarm.TorrentState
		torrents, peers := uint64(0), uint64(0)
		for len(d.b) > 0 && d.err == nil {
			d.torrent(&ts)
			torrents++
			peers += uint64(len(ts.Peers))
			if pass == 1 && d.err == nil {
				if err := fn(&ts); err != nil {
					return info, err
				}
			}
		}
		if d.err != nil {
			return info, fmt.Errorf("%w: %v", ErrCorrupt, d.err)
		}
		if torrents != wantTorrents || peers != wantPeers {
			return info, fmt.Errorf("%w: %d torrents and %d peers, trailer says %d and %d", ErrCorrupt, torrents, peers, wantTorrents, wantPeers)
		}
		info.Torrents, info.Peers = int(torrents), int(peers)
	}
	return info, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s at %d bytes from the end", what, len(d.b))
	}
	d.b = nil
}

func (d *decoder) bytes(n int) []byte {
	if len(d.b) < n {
		d.fail("truncated record")
		return make([]byte, n)
	}
	out := d.b[:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) uvarint(limit uint64, what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || v > limit {
		d.fail("bad " + what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

const maxSeconds = 1 << 40

func (d *decoder) torrent(ts *swarm.TorrentState) {
	ts.InfoHash = swarm.InfoHash(d.bytes(20))
	ts.Completed = uint32(d.uvarint(1<<32-1, "completed count"))
	ts.Idle = time.Duration(d.uvarint(maxSeconds, "idle time")) * time.Second
	// Each peer takes at least 8 bytes, which bounds the counts by the input.
	n4 := d.uvarint(uint64(len(d.b)/8), "IPv4 peer count")
	n6 := d.uvarint(uint64(len(d.b)/8), "IPv6 peer count")
	ts.Peers = ts.Peers[:0]
	for i := range n4 + n6 {
		if d.err != nil {
			return
		}
		var addr netip.Addr
		if i < n4 {
			addr = netip.AddrFrom4([4]byte(d.bytes(4)))
		} else {
			addr = netip.AddrFrom16([16]byte(d.bytes(16)))
			if addr.Is4In6() {
				d.fail("IPv4-mapped address in the IPv6 list")
			}
		}
		port := binary.BigEndian.Uint16(d.bytes(2))
		f := d.bytes(1)[0]
		age := d.uvarint(maxSeconds, "peer age")
		ts.Peers = append(ts.Peers, swarm.PeerState{
			Addr:      netip.AddrPortFrom(addr, port),
			Seeder:    f&flagSeeder != 0,
			Completed: f&flagCompleted != 0,
			Synced:    f&flagSynced != 0,
			Age:       time.Duration(age) * time.Second,
		})
	}
}

// Save writes a snapshot of store to path atomically: a temporary file in
// the same directory, synced, then renamed over path.
func Save(path string, store Source, now time.Time) (Info, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: %w", err)
	}
	tmp := f.Name()
	info, err := Encode(f, store, now)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return info, fmt.Errorf("snapshot: save %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		d.Sync()
		d.Close()
	}
	return info, nil
}

// Load restores the snapshot at path into store as of now: ages grow by the
// time the file lay on disk, so peers that expired meanwhile are dropped. A
// missing file is not an error (Info is zero).
func Load(path string, store *swarm.Store, now time.Time) (Info, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Info{}, nil
	}
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: %w", err)
	}
	var downtime time.Duration
	if len(data) >= headerLen {
		created := time.Unix(int64(binary.BigEndian.Uint64(data[12:])), 0)
		downtime = max(now.Sub(created), 0)
	}
	info, err := Decode(data, func(ts *swarm.TorrentState) error {
		ts.Idle += downtime
		for i := range ts.Peers {
			ts.Peers[i].Age += downtime
		}
		_, err := store.Restore(ts)
		return err
	})
	if err != nil {
		return info, fmt.Errorf("snapshot: load %s: %w", path, err)
	}
	return info, nil
}
