//go:build !linux

package udptracker

import (
	"context"
	"net"
	"net/netip"
)

// blockingReaders is false: the reader waits in the netpoller, without a P.
const blockingReaders = false

// reusePort is false: off Linux the server runs one socket, without
// SO_REUSEPORT's load spreading.
const reusePort = false

// portableConn reads and writes one datagram per call. It cannot learn a
// datagram's local address, so on a wildcard socket replies leave from the
// address the kernel picks.
type portableConn struct {
	conn *net.UDPConn
}

func listenBatch(network, addr string, receiveBuffer int) (batchConn, error) {
	pc, err := new(net.ListenConfig).ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	conn := pc.(*net.UDPConn)
	_ = conn.SetReadBuffer(receiveBuffer) // best effort
	return &portableConn{conn: conn}, nil
}

func (c *portableConn) LocalAddr() netip.AddrPort {
	a := c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

func (c *portableConn) Close() error { return c.conn.Close() }

func (c *portableConn) ReadBatch(msgs []message) (int, instant, error) {
	n, from, err := c.conn.ReadFromUDPAddrPort(msgs[0].Buf)
	read := now()
	if err != nil {
		return 0, read, err
	}
	msgs[0].N = n
	msgs[0].Addr = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	msgs[0].Scope, msgs[0].Local = 0, netip.Addr{}
	return 1, read, nil
}

func (c *portableConn) WriteBatch(msgs []message) (int, error) {
	if _, err := c.conn.WriteToUDPAddrPort(msgs[0].Buf[:msgs[0].N], msgs[0].Addr); err != nil {
		return 0, err
	}
	return 1, nil
}

var _ batchConn = (*portableConn)(nil)
