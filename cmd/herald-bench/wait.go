package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"time"

	"herald/swarm"
	"herald/udptracker"
)

// runWait polls a tracker until it accepts a UDP announce for the last
// torrent of the workload: the tracker is up, and (opentracker loads its
// whitelist in a thread after binding) its access list is loaded. The probe
// is a "started" event (opentracker lets "stopped" bypass its whitelist),
// followed by a "stopped" that takes the probe peer away again.
func runWait(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("wait", flag.ContinueOnError)
	targetFlag := fs.String("target", "127.0.0.1:6969", "tracker `host:port`")
	torrents := fs.Int("torrents", 10000, "probe torrent number N-1")
	seed := fs.Uint64("seed", 1, "workload seed")
	limit := fs.Duration("timeout", 30*time.Second, "give up after this long")
	keys := fs.Int("keys", 0, "probe with the first of `N` access keys (herald-bench keys), as the load does")
	if err := fs.Parse(args); err != nil {
		return err
	}
	target, err := netip.ParseAddrPort(*targetFlag)
	if err != nil {
		return fmt.Errorf("-target %q: %w", *targetFlag, err)
	}
	target = netip.AddrPortFrom(target.Addr().Unmap(), target.Port())
	var urlData []byte
	if *keys > 0 {
		urlData = []byte("/" + accessKey(*seed, 0) + "/announce")
	}
	deadline := time.Now().Add(*limit)
	lastErr := fmt.Errorf("no reply")
	for time.Now().Before(deadline) {
		hash := infoHash(*seed, *torrents-1)
		if lastErr = probeAnnounce(target, hash, urlData, udpEventStarted); lastErr == nil {
			if err := probeAnnounce(target, hash, urlData, udpEventStopped); err != nil {
				return fmt.Errorf("wait: remove the probe peer: %w", err)
			}
			fmt.Fprintf(out, "%v serves torrent %d\n", target, *torrents-1)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("wait: %v not ready after %v: %w", target, *limit, lastErr)
}

func probeAnnounce(target netip.AddrPort, hash [20]byte, urlData []byte, event uint32) error {
	conn, err := dialUDP(netip.Addr{}, target)
	if err != nil {
		return err
	}
	defer conn.Close()
	connID, err := connectSync(conn, 200*time.Millisecond)
	if err != nil {
		return err
	}
	const tid = 0x70726f62 // "prob"
	req := udptracker.AppendAnnounceRequest(nil, &udptracker.AnnounceRequest{
		ConnectionID: connID, TransactionID: tid, InfoHash: hash, PeerID: peerID(0),
		Left: 1, Event: swarm.Event(event), Port: 1, URLData: urlData,
	})
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	buf := make([]byte, 2048)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return fmt.Errorf("probe: %w", err)
		}
		if t, ok := replyTID(buf[:n]); !ok || t != tid {
			continue
		}
		if kind, _ := checkUDPReply(buf[:n], udpExpect{action: udpActionAnnounce}, peerLenOf(target.Addr())); kind != errNone {
			return fmt.Errorf("probe: announce reply invalid (%v): not whitelisted yet?", kind)
		}
		return nil
	}
}
