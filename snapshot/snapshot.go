// Package snapshot saves the whole swarm store to a file and restores it, so
// that a restart keeps every swarm.
//
// File layout (integers big-endian unless marked uvarint):
//
//	header     magic "HRLDSNAP" | version u16 | reserved u16 | created unix seconds i64
//	secret     length u8 | the UDP connection-id secret (version 2 on)
//	accounting length uvarint | the per-key accounting (version 3 on), in
//	           accounting's encoding (Ledger.AppendState)
//	torrents   swarm.TorrentState each, in swarm's encoding (AppendTorrentState)
//	trailer    marker "SNAPEND!" | torrents u64 | peers u64 | CRC-32C u32 of all bytes before it
//
// Version 1 had no secret and version 2 no accounting; their torrents are
// in the same encoding, and they still load. The secret and the keys in
// the accounting are why a snapshot is written readable by its owner only.
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
	"os"
	"path/filepath"
	"time"

	"herald/accounting"
	"herald/swarm"
)

// Version is the format version this package writes; it reads this one
// and every earlier one.
const Version = 3

var (
	magic     = []byte("HRLDSNAP")
	endMarker = []byte("SNAPEND!")
	crcTable  = crc32.MakeTable(crc32.Castagnoli)
)

const (
	headerLen  = 8 + 2 + 2 + 8
	trailerLen = 8 + 8 + 8 + 4
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
	// ConnIDSecret is the UDP connection-id secret saved with the swarms
	// (empty in a version 1 file), so that connection ids issued before a
	// restart stay valid after it.
	ConnIDSecret []byte
	// Keys is the number of keys with per-key accounting (0 before version
	// 3).
	Keys int
}

// MaxSecretLen bounds the connection-id secret a snapshot holds.
const MaxSecretLen = 255

// Source is where Encode gets torrents from; *swarm.Store satisfies it.
type Source interface {
	Dump(fn func(*swarm.TorrentState) error) error
}

// Encode writes a snapshot of src, the per-key accounting of ledger (nil
// for none) and the connection-id secret (at most MaxSecretLen bytes) to
// w.
func Encode(w io.Writer, src Source, ledger *accounting.Ledger, secret []byte, created time.Time) (Info, error) {
	if len(secret) > MaxSecretLen {
		return Info{}, fmt.Errorf("snapshot: encode: connection-id secret of %d bytes, at most %d", len(secret), MaxSecretLen)
	}
	crc := crc32.New(crcTable)
	cw := &countWriter{w: io.MultiWriter(w, crc)}
	bw := bufio.NewWriterSize(cw, 1<<16)
	info := Info{Created: created, ConnIDSecret: secret}

	var hdr [headerLen]byte
	copy(hdr[:], magic)
	binary.BigEndian.PutUint16(hdr[8:], Version)
	binary.BigEndian.PutUint64(hdr[12:], uint64(created.Unix()))
	bw.Write(hdr[:])
	bw.WriteByte(byte(len(secret)))
	bw.Write(secret)
	accounts := ledger.AppendState(nil)
	bw.Write(binary.AppendUvarint(nil, uint64(len(accounts))))
	bw.Write(accounts)
	if ledger != nil {
		info.Keys = ledger.Len()
	}

	var buf []byte
	err := src.Dump(func(ts *swarm.TorrentState) error {
		buf = swarm.AppendTorrentState(buf[:0], ts)
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
// fn must not keep it. The per-key accounting is left alone.
func Decode(data []byte, fn func(*swarm.TorrentState) error) (Info, error) {
	return decode(data, nil, fn)
}

// decode is Decode that also restores the accounting into ledger, if not
// nil, once everything is checked and before any torrent goes to fn.
func decode(data []byte, ledger *accounting.Ledger, fn func(*swarm.TorrentState) error) (Info, error) {
	var info Info
	if len(data) < headerLen+trailerLen || !bytes.Equal(data[:8], magic) {
		return info, fmt.Errorf("%w: not a herald snapshot or truncated header", ErrCorrupt)
	}
	version := binary.BigEndian.Uint16(data[8:])
	if version < 1 || version > Version {
		return info, fmt.Errorf("%w %d (this herald reads versions 1 to %d)", ErrVersion, version, Version)
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

	body = body[headerLen : len(data)-trailerLen]
	if version > 1 {
		if len(body) < 1 || len(body) < 1+int(body[0]) {
			return info, fmt.Errorf("%w: truncated connection-id secret", ErrCorrupt)
		}
		info.ConnIDSecret = bytes.Clone(body[1 : 1+body[0]])
		body = body[1+body[0]:]
	}
	var accounts []byte
	if version > 2 {
		n, k := binary.Uvarint(body)
		if k <= 0 || n > uint64(len(body)-k) {
			return info, fmt.Errorf("%w: truncated accounting", ErrCorrupt)
		}
		accounts, body = body[k:k+int(n)], body[k+int(n):]
	}

	// Two passes: validate everything, then hand out torrents.
	for pass := range 2 {
		var ts swarm.TorrentState
		torrents, peers := uint64(0), uint64(0)
		for b := body; len(b) > 0; {
			var err error
			if b, err = swarm.ParseTorrentState(b, &ts); err != nil {
				return info, fmt.Errorf("%w: torrent %d: %v", ErrCorrupt, torrents+1, err)
			}
			torrents++
			peers += uint64(len(ts.Peers))
			if pass == 1 {
				if err := fn(&ts); err != nil {
					return info, err
				}
			}
		}
		if torrents != wantTorrents || peers != wantPeers {
			return info, fmt.Errorf("%w: %d torrents and %d peers, trailer says %d and %d", ErrCorrupt, torrents, peers, wantTorrents, wantPeers)
		}
		info.Torrents, info.Peers = int(torrents), int(peers)
		if pass == 0 && ledger != nil && accounts != nil {
			if err := ledger.Restore(accounts); err != nil {
				return info, fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			info.Keys = ledger.Len()
		}
	}
	return info, nil
}

// Save writes a snapshot of store, the per-key accounting of ledger (nil
// for none) and the connection-id secret to path atomically: a temporary
// file in the same directory (mode 0600), synced, then renamed over path.
func Save(path string, store Source, ledger *accounting.Ledger, secret []byte, now time.Time) (Info, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: %w", err)
	}
	tmp := f.Name()
	info, err := Encode(f, store, ledger, secret, now)
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

// Load restores the snapshot at path into store, and its per-key
// accounting into ledger (nil: left out), as of now: ages grow by the
// time the file lay on disk, so peers that expired meanwhile are dropped. A
// missing file is not an error (Info is zero).
func Load(path string, store *swarm.Store, ledger *accounting.Ledger, now time.Time) (Info, error) {
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
	info, err := decode(data, ledger, func(ts *swarm.TorrentState) error {
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
