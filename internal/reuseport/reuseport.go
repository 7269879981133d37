// Package reuseport guards the SO_REUSEPORT socket groups herald binds one
// per core. SO_REUSEPORT lets any process of the same user join a group:
// a second herald started by mistake on a served port would silently take
// part of the traffic and split every swarm between two processes that
// know nothing of each other. Free refuses such a start.
package reuseport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrServed is returned by Free for an address that something already
// serves.
var ErrServed = errors.New("already served by another process (a second herald?); stop it or choose another address")

// Free reports whether addr ("host:port") can be bound on network ("tcp",
// "tcp4", "tcp6", "udp", "udp4" or "udp6") by a socket without
// SO_REUSEPORT, which no other socket can share: the kernel then applies
// its own overlap rules, so a wildcard or dual-stack address is refused
// when any overlapping address is served, and the reverse. Port 0 is
// always free: the kernel picks an unused port.
//
// Free is called just before a group is bound; two starts racing within
// that window can both pass, which a mistaken second start does not do.
func Free(network, addr string) error {
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Port() == 0 {
		return nil
	}
	var err error
	switch network {
	case "tcp", "tcp4", "tcp6":
		// net.Listen sets SO_REUSEADDR: connections left in TIME_WAIT by
		// an earlier run do not count, a listening socket does.
		var ln net.Listener
		if ln, err = net.Listen(network, addr); err == nil {
			ln.Close()
		}
	default:
		var pc net.PacketConn
		if pc, err = net.ListenPacket(network, addr); err == nil {
			pc.Close()
		}
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s: %w", network, ErrServed)
	}
	return nil // any other failure is the real bind's to report
}
