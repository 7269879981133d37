package udptracker

import "net/netip"

// batchConn is one UDP socket read and written many datagrams per system
// call where the platform allows (recvmmsg/sendmmsg on Linux). Only its
// reader goroutine uses it, except Close. Tests fake it.
type batchConn interface {
	// ReadBatch blocks until at least one datagram arrives, fills msgs[:n]
	// and returns n and when the read ended. Each Buf must have its full
	// length available.
	ReadBatch(msgs []message) (n int, read instant, err error)
	// WriteBatch sends msgs[i].Buf[:msgs[i].N] to msgs[i].Addr, from
	// msgs[i].Local when set, and returns how many went out. An error is
	// about msgs[n].
	WriteBatch(msgs []message) (int, error)
	LocalAddr() netip.AddrPort
	Close() error
}

// message is one datagram in a batch. Its memory belongs to the reader.
type message struct {
	Buf  []byte
	N    int
	Addr netip.AddrPort // the client, IPv4 unmapped
	// Scope is the client's IPv6 scope (interface index) for link-local
	// addresses, kept beside Addr because a netip zone string would cost
	// an allocation per packet.
	Scope uint32
	// Local is the address the datagram was sent to, and the one its reply
	// must leave from; the zero Addr when the socket is bound to one
	// address (or the platform cannot tell).
	Local netip.Addr
	// Arrived is when the kernel received the datagram, in Unix
	// nanoseconds (SO_TIMESTAMPNS on Linux), or 0 where the platform does
	// not say: the response time then runs from the read.
	Arrived int64
}

func newMessages(n, size int) []message {
	slab := make([]byte, n*size)
	msgs := make([]message, n)
	for i := range msgs {
		msgs[i].Buf = slab[i*size : (i+1)*size : (i+1)*size]
	}
	return msgs
}
