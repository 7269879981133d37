package snapshot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"herald/access"
	"herald/accounting"
	"herald/swarm"
)

func ledgerOf(t *testing.T, keys int) *accounting.Ledger {
	t.Helper()
	l := accounting.New(time.Hour, 0)
	now := time.Now()
	for i := range keys {
		k, err := access.ParseKey("Snapshot0Test0Key0" + string(rune('a'+i%26)) + "0000000000000")
		if err != nil {
			t.Fatal(err)
		}
		a := swarm.Announce{InfoHash: swarm.InfoHash{byte(i)}, PeerID: swarm.PeerID{1}, Event: swarm.EventStarted}
		l.Record(&k, &a, now)
		a.Uploaded, a.Downloaded, a.Event = uint64(i)<<30, 12345, swarm.EventNone
		l.Record(&k, &a, now)
	}
	return l
}

// Issue 15 item 2: the per-key accounting is saved with the swarms and
// restored with them.
func TestAccountingSavedAndRestored(t *testing.T) {
	src, ledger := filled(t, 200, 20), ledgerOf(t, 26)
	path := filepath.Join(t.TempDir(), "herald.snapshot")
	now := time.Now()
	info, err := Save(path, src, ledger, testSecret, now)
	if err != nil || info.Keys != 26 {
		t.Fatalf("saved %+v, %v", info, err)
	}
	dst, _ := swarm.New(swarm.Config{})
	dst.SetNow(now)
	restored := accounting.New(time.Hour, 0)
	got, err := Load(path, dst, restored, now)
	if err != nil {
		t.Fatal(err)
	}
	if got.Keys != 26 || dst.Peers() != 200 || !bytes.Equal(got.ConnIDSecret, testSecret) {
		t.Fatalf("loaded %+v, %d peers", got, dst.Peers())
	}
	if want, have := ledger.Page("", 100), restored.Page("", 100); !slices.Equal(have, want) || restored.Peers() != ledger.Peers() {
		t.Fatalf("restored accounting\n%+v\nwant\n%+v", have, want)
	}
}

// A file whose checksum is right but whose accounting is not (written by
// a broken herald, or by hand) restores nothing: neither the accounting
// nor any torrent.
func TestBadAccountingRestoresNothing(t *testing.T) {
	var good bytes.Buffer
	if _, err := Encode(&good, filled(t, 50, 5), ledgerOf(t, 3), nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	data := good.Bytes()
	// The accounting section starts after the header and the empty
	// secret: its length, then its first byte, the count of keys.
	at := headerLen + 1
	n, k := binary.Uvarint(data[at:])
	if n < 2 || data[at+k] != 3 {
		t.Fatalf("accounting section not where expected: length %d, count %d", n, data[at+k])
	}
	data[at+k] = 2 // one key too few: bytes left over
	binary.BigEndian.PutUint32(data[len(data)-4:], crc32.Checksum(data[:len(data)-4], crcTable))
	path := filepath.Join(t.TempDir(), "herald.snapshot")
	os.WriteFile(path, data, 0o600)
	store, _ := swarm.New(swarm.Config{})
	ledger := accounting.New(time.Hour, 0)
	if _, err := Load(path, store, ledger, time.Now()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("load: %v, want ErrCorrupt", err)
	}
	if store.Torrents() != 0 || ledger.Len() != 0 {
		t.Fatalf("a corrupt file restored %d torrents and %d keys", store.Torrents(), ledger.Len())
	}
}

// testdata/v2.snap was written by herald's format version 2 (before the
// accounting): two torrents, IPv4 and IPv6 peers, a completed count and a
// connection-id secret. Every later herald reads it, with no accounting.
func TestDecodeVersion2File(t *testing.T) {
	created := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	now := created.Add(10 * time.Second)
	s, _ := swarm.New(swarm.Config{})
	s.SetNow(now)
	ledger := accounting.New(time.Hour, 0)
	info, err := Load("testdata/v2.snap", s, ledger, now)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Created.Equal(created) || info.Torrents != 2 || info.Peers != 3 || string(info.ConnIDSecret) != "sixteen byte key" || info.Keys != 0 {
		t.Fatalf("info %+v", info)
	}
	for h, want := range map[swarm.InfoHash]swarm.Counts{
		{0x20, 0x21}: {Seeders: 1, Leechers: 1, Completed: 1},
		{0x30, 0x31}: {Leechers: 1},
	} {
		if got, ok := s.Scrape(h); !ok || got != want {
			t.Errorf("torrent %x: %+v (present %v), want %+v", h[:2], got, ok, want)
		}
	}
	if ledger.Len() != 0 {
		t.Errorf("accounting from a version 2 file: %d keys", ledger.Len())
	}
}
