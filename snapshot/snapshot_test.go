package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herald/swarm"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func filled(t testing.TB, peers, torrents int) *swarm.Store {
	t.Helper()
	s, err := swarm.New(swarm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s.SetNow(time.Now())
	for i := range peers {
		var h swarm.InfoHash
		h[0], h[1], h[2] = byte(i%torrents), byte(i%torrents>>8), byte(i%torrents>>16)
		addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(i|1))
		if i%4 == 0 {
			addr = netip.AddrPortFrom(netip.AddrFrom16([16]byte{0x20, 1, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}), uint16(i|1))
		}
		a := swarm.Announce{InfoHash: h, Addr: addr, Left: uint64(i % 3)}
		if i%7 == 0 {
			a.Event, a.Left = swarm.EventCompleted, 0
		}
		if _, _, err := s.Announce(&a, swarm.FamilyBoth, swarm.Peers{}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// state flattens a store for comparison: every torrent's counts and peers.
func state(t testing.TB, s *swarm.Store) map[swarm.InfoHash]string {
	t.Helper()
	out := map[swarm.InfoHash]string{}
	s.Dump(func(ts *swarm.TorrentState) error {
		var b strings.Builder
		c, _ := s.Scrape(ts.InfoHash)
		fmt.Fprintf(&b, "completed=%d", c.Completed)
		for _, p := range ts.Peers {
			b.WriteString(" " + p.Addr.String())
			if p.Seeder {
				b.WriteString("S")
			}
			if p.Completed {
				b.WriteString("C")
			}
		}
		out[ts.InfoHash] = b.String()
		return nil
	})
	return out
}

func TestSaveLoadRoundTrip(t *testing.T) {
	src := filled(t, 20000, 2000)
	path := filepath.Join(t.TempDir(), "herald.snapshot")
	now := time.Now()
	info, err := Save(path, src, nil, testSecret, now)
	if err != nil {
		t.Fatal(err)
	}
	if info.Torrents != 2000 || info.Peers != 20000 {
		t.Fatalf("saved %+v", info)
	}
	dst, _ := swarm.New(swarm.Config{})
	dst.SetNow(now)
	got, err := Load(path, dst, nil, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.Peers != 20000 || dst.Peers() != 20000 || dst.Torrents() != 2000 {
		t.Fatalf("loaded %+v into %d peers %d torrents", got, dst.Peers(), dst.Torrents())
	}
	if !bytes.Equal(got.ConnIDSecret, testSecret) {
		t.Fatalf("connection-id secret %q, want %q", got.ConnIDSecret, testSecret)
	}
	want, have := state(t, src), state(t, dst)
	if len(have) != len(want) {
		t.Fatalf("restored %d torrents, want %d", len(have), len(want))
	}
	for h, w := range want {
		if have[h] != w {
			t.Fatalf("torrent %x: restored %q, want %q", h, have[h], w)
		}
	}
	// Down longer than the peer timeout: peers are gone, completed counts stay.
	late, _ := swarm.New(swarm.Config{})
	if _, err := Load(path, late, nil, now.Add(46*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if late.Peers() != 0 || late.Totals().Completed != src.Totals().Completed {
		t.Fatalf("after 46 min down: %d peers, completed %d want %d", late.Peers(), late.Totals().Completed, src.Totals().Completed)
	}
}

func TestMissingFileIsEmptyStart(t *testing.T) {
	s, _ := swarm.New(swarm.Config{})
	info, err := Load(filepath.Join(t.TempDir(), "none"), s, nil, time.Now())
	if err != nil || info.Peers != 0 {
		t.Fatalf("missing file: %+v %v", info, err)
	}
}

func TestDamagedFiles(t *testing.T) {
	var good bytes.Buffer
	if _, err := Encode(&good, filled(t, 500, 50), nil, testSecret, time.Now()); err != nil {
		t.Fatal(err)
	}
	g := good.Bytes()
	future := bytes.Clone(g)
	future[9] = Version + 1
	flipped := bytes.Clone(g)
	flipped[len(g)/2] ^= 0x40
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"truncated header", g[:10], ErrCorrupt},
		{"secret longer than the file", append(append(bytes.Clone(g[:headerLen]), 255), g[len(g)-trailerLen:]...), ErrCorrupt},
		{"truncated body", g[:len(g)/2], ErrCorrupt},
		{"missing last byte", g[:len(g)-1], ErrCorrupt},
		{"flipped bit", flipped, ErrCorrupt},
		{"future version", future, ErrVersion},
		{"not a snapshot", []byte(strings.Repeat("opentracker statedump\n", 5)), ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			_, err := Decode(c.data, func(*swarm.TorrentState) error { calls++; return nil })
			if !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
			if calls != 0 {
				t.Fatalf("a damaged file restored %d torrents", calls)
			}
		})
	}
}

func TestImportStatedump(t *testing.T) {
	s, _ := swarm.New(swarm.Config{})
	dump := "0123456789abcdef0123456789abcdef01234567:1234:17\n\nFEDCBA9876543210FEDCBA9876543210FEDCBA98:99:0\n"
	n, err := ImportStatedump(strings.NewReader(dump), s)
	if err != nil || n != 2 {
		t.Fatalf("imported %d, %v", n, err)
	}
	var h swarm.InfoHash
	copy(h[:], []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67})
	if c, ok := s.Scrape(h); !ok || c.Completed != 17 {
		t.Fatalf("imported torrent: %+v %v", c, ok)
	}
	if s.Torrents() != 1 {
		t.Fatalf("%d torrents; one never completed and should not be created", s.Torrents())
	}
	_, err = ImportStatedump(strings.NewReader(dump+"nothex:1:2\n"), s)
	if err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("bad line: %v, want an error naming line 4", err)
	}
}

func FuzzDecode(f *testing.F) {
	var good bytes.Buffer
	Encode(&good, filled(f, 50, 5), nil, testSecret, time.Unix(1700000000, 0))
	f.Add(good.Bytes())
	if v1, err := os.ReadFile("testdata/v1.snap"); err == nil {
		f.Add(v1)
	}
	f.Add([]byte("HRLDSNAP"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _ := swarm.New(swarm.Config{Shards: 1})
		info, err := Decode(data, func(ts *swarm.TorrentState) error {
			_, err := s.Restore(ts)
			return err
		})
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to a file that decodes to the same counts.
		var again bytes.Buffer
		if _, err := Encode(&again, s, nil, info.ConnIDSecret, info.Created); err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(again.Bytes(), func(*swarm.TorrentState) error { return nil }); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
	})
}

func FuzzImportStatedump(f *testing.F) {
	f.Add("0123456789abcdef0123456789abcdef01234567:1234:17\n")
	f.Add("x:y:z\n")
	f.Fuzz(func(t *testing.T, dump string) {
		s, _ := swarm.New(swarm.Config{Shards: 1})
		ImportStatedump(strings.NewReader(dump), s)
	})
}

func BenchmarkSaveLoad1M(b *testing.B) {
	src := filled(b, 1_000_000, 100_000)
	path := filepath.Join(b.TempDir(), "bench.snapshot")
	for b.Loop() {
		t0 := time.Now()
		info, err := Save(path, src, nil, nil, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		save := time.Since(t0)
		dst, _ := swarm.New(swarm.Config{})
		t1 := time.Now()
		if _, err := Load(path, dst, nil, time.Now()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(save.Seconds()*1000, "save-ms")
		b.ReportMetric(time.Since(t1).Seconds()*1000, "load-ms")
		b.ReportMetric(float64(info.Bytes)/1e6, "MB")
		st, _ := os.Stat(path)
		b.ReportMetric(float64(st.Size())/float64(info.Peers), "B/peer")
	}
}

// BenchmarkAnnouncePauseDuringSave reports the longest time one announce
// took while a snapshot of 1,000,000 peers was written ("saving"), beside the
// same figure over the same time with no snapshot ("idle"): on a shared
// 2-core machine the scheduler alone causes pauses of milliseconds.
func BenchmarkAnnouncePauseDuringSave(b *testing.B) {
	src := filled(b, 1_000_000, 100_000)
	path := filepath.Join(b.TempDir(), "bench.snapshot")
	for _, mode := range []string{"idle", "saving"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				stop := make(chan struct{})
				done := make(chan struct{})
				var worst time.Duration
				var n int
				go func() {
					defer close(done)
					dst := swarm.Peers{V4: make([]byte, 0, 1200), V6: make([]byte, 0, 3600)}
					for i := 0; ; i++ {
						var h swarm.InfoHash
						h[0], h[1], h[2] = byte(i%100_000), byte(i%100_000>>8), byte(i%100_000>>16)
						a := swarm.Announce{InfoHash: h, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{11, 0, 0, 1}), 1), Left: 1, NumWant: 50}
						t0 := time.Now()
						src.Announce(&a, swarm.FamilyBoth, dst)
						worst = max(worst, time.Since(t0))
						n++
						select {
						case <-stop:
							return
						default:
						}
					}
				}()
				if mode == "idle" {
					time.Sleep(200 * time.Millisecond)
				} else if _, err := Save(path, src, nil, nil, time.Now()); err != nil {
					b.Fatal(err)
				}
				close(stop)
				<-done
				b.ReportMetric(float64(worst.Microseconds()), "max-announce-µs")
				b.ReportMetric(float64(n), "announces")
			}
		})
	}
}
