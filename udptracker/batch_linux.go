package udptracker

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"herald/internal/sched"
)

// Single-datagram mode. At light load every recvmmsg returns one datagram,
// and recvmmsg and sendmmsg then cost more in the kernel than recvmsg and
// sendto (the mmsghdr vector is read in and written back, and
// MSG_WAITFORONE makes a second, non-blocking try for a datagram that is
// not there; see docs/benchmarks.md, "Single-datagram reads"). After
// singleAfter reads in a row that each slept until one datagram came (it
// arrived after the read began), the reader reads one datagram per recvmsg,
// until it reads one that the kernel received before the read began (a
// queue is forming) or a probe finds more than one: every probeEvery
// single reads, one recvmmsg checks for a queue, in case the socket gives
// no receive times. A batch of one that had waited in the queue does not
// count: under moderate load such batches alternate with bursts, and the
// first datagram of each burst would cost a call of its own.
const (
	singleAfter = 8
	probeEvery  = 64
)

// blockingReaders reports that each socket's reader blocks in the kernel
// holding its P (see BlockedReaders).
const blockingReaders = true

// reusePort reports that several sockets can share the address
// (SO_REUSEPORT), so the server runs one per core.
const reusePort = true

// oobLen is room for the control messages of one datagram: an
// IPV6_PKTINFO (or the smaller IP_PKTINFO), the local address of a
// received datagram and the source address of its reply, and the
// SO_TIMESTAMPNS receive time.
var oobLen = unix.CmsgSpace(unix.SizeofInet6Pktinfo) + unix.CmsgSpace(int(unsafe.Sizeof(unix.Timespec{})))

// linuxConn batches with recvmmsg/sendmmsg, calling them directly rather
// than through golang.org/x/net's ReadBatch/WriteBatch: those return each
// sender as a freshly allocated *net.UDPAddr (x/net v0.62.0,
// internal/socket/sys_posix.go parseInetAddr), two allocations per
// datagram that this path avoids. Headers, iovecs, addresses and control
// buffers are allocated once per socket.
//
// The socket is in blocking mode and outside Go's netpoller: its reader
// sleeps in recvmmsg itself (MSG_WAITFORONE: block for the first datagram,
// then take whatever else is queued). Through the netpoller, a datagram
// arriving at an idle server cost an epoll_pwait, a recvmmsg that found
// nothing, the goroutine's wake-up through the scheduler (futex) and a
// second recvmmsg; now it costs the one recvmmsg that returns it (see
// docs/benchmarks.md, "UDP read path"). The reader holds an OS thread
// while it waits, one per socket, as a blocked system call does.
//
// The system calls go straight to the descriptor, not through an
// os.File's RawConn: its fd mutex, the bound callbacks and the poller's
// checks were about a quarter of the reader's user time at light load
// (docs/benchmarks.md, issue 18, session 6). What the File gave, state
// keeps: every system call on fd is bracketed by use and done, Close
// marks the socket closing and wakes a blocked reader, and the last of
// them closes fd, so its number is never reused under a call.
//
// When its reads wait long (sched.IdleAfter) the reader waits for the
// next datagram in the netpoller instead (sched.IdleWait), and then reads
// it without blocking.
type linuxConn struct {
	fd      int           // the blocking socket; Close wakes its reader with shutdown(2)
	state   atomic.Uint64 // closing and closed bits, and the calls in progress (see use)
	local   netip.AddrPort
	family  int  // unix.AF_INET or unix.AF_INET6
	pktinfo bool // bound to a wildcard: learn each datagram's local address

	rx, tx mmsgs
	rxMsgs *message // the messages rx's headers point into

	lastRead  instant // the end of the last read
	lastYield int64   // the monotonic time of the last yield (see ReadBatch)

	single bool // read one datagram per recvmsg (see singleAfter)
	streak int  // reads in a row that slept for one datagram, or single reads since the last probe

	idle *sched.IdleWait // the reads' waits, and the netpoller wait; closed with fd
}

// The bits of linuxConn.state above the count of calls in progress.
const (
	connClosing = 1 << 63 // Close was called: no new call may start
	connClosed  = 1 << 62 // the descriptor is closed
)

// use reports whether a system call may use c.fd, and if so counts it in
// progress until the matching done. After Close it reports false.
func (c *linuxConn) use() bool {
	if c.state.Add(1)&connClosing != 0 {
		c.done()
		return false
	}
	return true
}

// done ends a use (or Close's own hold on the descriptor). The last one
// after Close closes the descriptor, exactly once: a use that fails after
// that finds connClosed set and closes nothing.
func (c *linuxConn) done() error {
	if c.state.Add(^uint64(0)) == connClosing && c.state.CompareAndSwap(connClosing, connClosing|connClosed) {
		return errors.Join(c.idle.Close(), os.NewSyscallError("close", unix.Close(c.fd)))
	}
	return nil
}

// mmsgs is the kernel-facing side of a batch.
type mmsgs struct {
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // big enough for either family
	oob   []byte
	vlen  int
}

// newMmsgs returns n headers, each pointing at its own address and
// iovec for good; the iovecs' buffers and the control messages are set
// per use.
func newMmsgs(n int) mmsgs {
	b := mmsgs{
		hdrs:  make([]unix.Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
		oob:   make([]byte, n*oobLen),
	}
	for i := range b.hdrs {
		h := &b.hdrs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
	}
	return b
}

func listenBatch(network, addr string, receiveBuffer int) (batchConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); cerr != nil {
			return cerr
		}
		return os.NewSyscallError("setsockopt SO_REUSEPORT", err)
	}}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, err
	}
	conn := pc.(*net.UDPConn)
	c := &linuxConn{local: conn.LocalAddr().(*net.UDPAddr).AddrPort(), rx: newMmsgs(batchLen), tx: newMmsgs(batchLen)}
	c.local = netip.AddrPortFrom(c.local.Addr().Unmap(), c.local.Port())
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	var fd int
	var serr error
	err = raw.Control(func(sysfd uintptr) {
		if c.family, serr = unix.GetsockoptInt(int(sysfd), unix.SOL_SOCKET, unix.SO_DOMAIN); serr != nil {
			serr = os.NewSyscallError("getsockopt SO_DOMAIN", serr)
			return
		}
		// Best effort: SO_RCVBUFFORCE passes net.core.rmem_max when we run
		// as root (Listen comes before the privilege drop); else the
		// kernel clamps SO_RCVBUF to rmem_max.
		if unix.SetsockoptInt(int(sysfd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, receiveBuffer) != nil {
			_ = unix.SetsockoptInt(int(sysfd), unix.SOL_SOCKET, unix.SO_RCVBUF, receiveBuffer)
		}
		// The kernel's receive time of each datagram, so that the response
		// time counts the wait in the socket's queue (see message.Arrived).
		// Best effort: without it the time runs from the read.
		_ = unix.SetsockoptInt(int(sysfd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
		if c.local.Addr().IsUnspecified() {
			c.pktinfo = true
			if c.family == unix.AF_INET6 {
				// On a dual-stack socket this also reports the local address
				// of IPv4 datagrams, as a mapped address.
				serr = unix.SetsockoptInt(int(sysfd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
			} else {
				serr = unix.SetsockoptInt(int(sysfd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
			}
			if serr != nil {
				serr = os.NewSyscallError("setsockopt PKTINFO", serr)
				return
			}
		}
		// Take the socket out of the netpoller: a copy of the descriptor
		// outlives conn.Close, which deregisters and closes the original.
		if fd, serr = unix.FcntlInt(sysfd, unix.F_DUPFD_CLOEXEC, 0); serr != nil {
			serr = os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", serr)
		}
	})
	conn.Close()
	if err = errors.Join(err, serr); err != nil {
		return nil, err
	}
	// O_NONBLOCK belongs to the open file, which the copy shares.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	c.fd = fd
	if c.idle, err = sched.NewIdleWait(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	c.lastRead = now()
	return c, nil
}

func (c *linuxConn) LocalAddr() netip.AddrPort { return c.local }

// Close wakes a reader blocked in recvmmsg: shutdown(SHUT_RD) makes it
// return, and its next read fails with net.ErrClosed. The descriptor
// itself is closed by the last call that was using it, or by Close when
// none was, so its number cannot be reused under a reader. Close holds the
// descriptor (as a use) while it shuts the socket down.
func (c *linuxConn) Close() error {
	for {
		s := c.state.Load()
		if s&connClosing != 0 {
			return net.ErrClosed
		}
		if c.state.CompareAndSwap(s, (s+1)|connClosing) {
			break
		}
	}
	// On an unconnected socket shutdown reports ENOTCONN but still marks
	// the socket shut and wakes its waiters (Linux inet_shutdown).
	_ = unix.Shutdown(c.fd, unix.SHUT_RD)
	return c.done()
}

// ReadBatch reads the monotonic clock before the read and both clocks
// after it (see clock.go).
func (c *linuxConn) ReadBatch(msgs []message) (int, instant, error) {
	// The read's start, in the wall clock of the kernel's receive times:
	// the last read's end moved on by the monotonic clock.
	start := nanotime()
	began := c.lastRead.wall + (start - c.lastRead.mono)
	// The reader never parks in the scheduler (it blocks in the kernel), so
	// to sysmon its P looks busy with one goroutine for good, and every
	// 10 ms sysmon takes the P back from the system call and then polls
	// every 20 µs for the next millisecond. A yield every few milliseconds
	// moves the P's scheduling tick on and keeps sysmon asleep.
	if start-c.lastYield > int64(sched.YieldEvery) {
		sched.Yield()
		c.lastYield = start
	}
	b := &c.rx
	if vlen := min(len(msgs), len(b.hdrs)); b.vlen != vlen || c.rxMsgs != &msgs[0] {
		// The reader passes the same messages every time: the headers
		// are built once, and after each read only the fields the kernel
		// wrote are reset.
		b.vlen, c.rxMsgs = vlen, &msgs[0]
		for i := range vlen {
			b.iovs[i].Base = &msgs[i].Buf[0]
			b.iovs[i].SetLen(len(msgs[i].Buf))
			b.hdrs[i].Hdr.Control = &b.oob[i*oobLen]
			c.resetRx(i)
		}
	}
	if !c.use() {
		return 0, c.lastRead, net.ErrClosed
	}
	// After a wait in the netpoller a datagram is queued: the read takes
	// it without blocking (see sched.IdleWait.Wait).
	ready := c.idle.Idle()
	if ready {
		c.idle.Wait()
	}
	if c.single && c.streak < probeEvery {
		c.streak++
		n, err := c.readOne(&msgs[0], ready)
		c.done()
		c.endRead(start)
		if n == 1 && msgs[0].Arrived != 0 && msgs[0].Arrived < began {
			c.single, c.streak = false, 0 // it waited for the read: a queue
		}
		return n, c.lastRead, err
	}
	n, errno := recvCall(ready, unix.SYS_RECVMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(b.vlen), unix.MSG_WAITFORONE, 0, 0, 3)
	c.done()
	c.endRead(start)
	if errno != 0 {
		return 0, c.lastRead, os.NewSyscallError("recvmmsg", errno)
	}
	for i := range n {
		c.decodeRx(&msgs[i], i)
	}
	switch {
	case n == 0: // a recvmmsg woken by Close
	case n > 1 || msgs[0].Arrived != 0 && msgs[0].Arrived < began:
		c.single, c.streak = false, 0 // a queue
	case c.single: // a probe that found none
		c.streak = 0
	default:
		c.streak++
		if c.streak >= singleAfter {
			c.single, c.streak = true, 0
		}
	}
	return n, c.lastRead, nil
}

// endRead notes the end of a read that began at start (monotonic).
func (c *linuxConn) endRead(start int64) {
	c.lastRead = now()
	c.idle.Waited(c.lastRead.mono - start)
}

// decodeRx fills m from receive header i, which the kernel wrote, and
// readies the header for the next read.
func (c *linuxConn) decodeRx(m *message, i int) {
	b := &c.rx
	h := &b.hdrs[i]
	m.N = int(h.Len)
	m.Addr, m.Scope = decodeSockaddr(&b.names[i])
	m.Local, m.Arrived = readControl(b.oob[i*oobLen : i*oobLen+int(h.Hdr.Controllen)])
	c.resetRx(i)
}

// readOne reads one datagram into m with recvmsg over receive header 0,
// which describes m (see ReadBatch), within a use of the descriptor;
// ready says one is queued (see recvCall).
func (c *linuxConn) readOne(m *message, ready bool) (int, error) {
	h := &c.rx.hdrs[0]
	n, errno := recvCall(ready, unix.SYS_RECVMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&h.Hdr)), 0, 0, 0, 0, 2)
	if errno != 0 {
		return 0, os.NewSyscallError("recvmsg", errno)
	}
	if h.Hdr.Namelen == 0 {
		return 0, nil // no sender: shutdown(2) woke the read (see Close)
	}
	h.Len = uint32(n)
	c.decodeRx(m, 0)
	return 1, nil
}

// resetRx readies receive header i for the next recvmmsg: the kernel
// writes the received length, the address length and the control length.
func (c *linuxConn) resetRx(i int) {
	h := &c.rx.hdrs[i]
	h.Len = 0
	h.Hdr.Namelen = unix.SizeofSockaddrInet6
	h.Hdr.Flags = 0
	h.Hdr.SetControllen(oobLen)
}

func (c *linuxConn) WriteBatch(msgs []message) (int, error) {
	b := &c.tx
	b.vlen = min(len(msgs), len(b.hdrs))
	for i := range b.vlen {
		m := &msgs[i]
		b.iovs[i].Base = &m.Buf[0]
		b.iovs[i].SetLen(m.N)
		h := &b.hdrs[i].Hdr
		h.Namelen = c.encodeSockaddr(&b.names[i], m.Addr, m.Scope)
		h.Control, h.Controllen = nil, 0
		if c.pktinfo && m.Local.IsValid() {
			oob := b.oob[i*oobLen : (i+1)*oobLen]
			h.Control = &oob[0]
			h.SetControllen(c.encodePktinfo(oob, m.Local))
		}
	}
	if !c.use() {
		return 0, net.ErrClosed
	}
	if b.vlen != 1 {
		// A sendmmsg of a whole batch stays a blocking call: it can take
		// long enough that the scheduler should know about it.
		n, errno := blockingCall(unix.SYS_SENDMMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&b.hdrs[0])), uintptr(b.vlen), 0, 0, 0)
		c.done()
		if errno != 0 {
			return 0, os.NewSyscallError("sendmmsg", errno)
		}
		return n, nil
	}
	// One datagram: sendto, or sendmsg when it carries a source address.
	h := &b.hdrs[0].Hdr
	var errno syscall.Errno
	name := "sendto"
	if h.Control == nil {
		_, errno = nonblockingFirst(unix.SYS_SENDTO, uintptr(c.fd), uintptr(unsafe.Pointer(h.Iov.Base)), uintptr(h.Iov.Len), 0, uintptr(unsafe.Pointer(h.Name)), uintptr(h.Namelen), 3)
	} else {
		name = "sendmsg"
		_, errno = nonblockingFirst(unix.SYS_SENDMSG, uintptr(c.fd), uintptr(unsafe.Pointer(h)), 0, 0, 0, 0, 2)
	}
	c.done()
	if errno != 0 {
		return 0, os.NewSyscallError(name, errno)
	}
	return 1, nil
}

// nonblockingFirst makes a send or receive whose flags are argument
// a[flags] of a = a1..a6 (3 for sendto and recvmmsg, 2 for sendmsg and
// recvmsg): first with MSG_DONTWAIT as a raw system call, without the
// scheduler's bookkeeping for a call that may block, and only if that
// would have had to wait, as a blocking call. It suits a call that rarely
// waits: a UDP send waits only for room in the socket's send buffer, and
// a read after the idle wait finds its datagram queued. The bookkeeping
// is not only time: entering a system call wakes sysmon when every P was
// idle, as they are after an idle wait, and sysmon then polls and sleeps
// again (2 futex calls, a nanosleep and 2 thread switches per datagram).
func nonblockingFirst(trap, a1, a2, a3, a4, a5, a6 uintptr, flags int) (int, syscall.Errno) {
	a := [6]uintptr{a1, a2, a3, a4, a5, a6}
	a[flags] |= unix.MSG_DONTWAIT
	n, _, errno := unix.RawSyscall6(trap, a[0], a[1], a[2], a[3], a[4], a[5])
	switch errno {
	case 0:
		return int(n), 0
	case unix.EAGAIN, unix.EINTR:
		a[flags] &^= unix.MSG_DONTWAIT
		return blockingCall(trap, a[0], a[1], a[2], a[3], a[4], a[5])
	}
	return 0, errno
}

// recvCall makes a receive: nonblockingFirst when ready (a datagram is
// queued), else a blocking call.
func recvCall(ready bool, trap, a1, a2, a3, a4, a5, a6 uintptr, flags int) (int, syscall.Errno) {
	if ready {
		return nonblockingFirst(trap, a1, a2, a3, a4, a5, a6, flags)
	}
	return blockingCall(trap, a1, a2, a3, a4, a5, a6)
}

// blockingCall makes a system call that may block, through the scheduler
// (which then knows the thread is in the kernel), retrying it when a
// signal interrupts it.
func blockingCall(trap, a1, a2, a3, a4, a5, a6 uintptr) (int, syscall.Errno) {
	for {
		n, _, errno := unix.Syscall6(trap, a1, a2, a3, a4, a5, a6)
		switch errno {
		case 0:
			return int(n), 0
		case unix.EINTR:
			continue
		}
		return 0, errno
	}
}

// decodeSockaddr reads a sockaddr_in or sockaddr_in6 the kernel filled in.
func decodeSockaddr(sa *unix.RawSockaddrInet6) (netip.AddrPort, uint32) {
	port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
	if sa.Family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port), 0
	}
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port), sa.Scope_id
}

// encodeSockaddr writes addr in the socket's family into sa and returns
// its length; an IPv4 client of a dual-stack socket becomes a mapped
// address.
func (c *linuxConn) encodeSockaddr(sa *unix.RawSockaddrInet6, addr netip.AddrPort, scope uint32) uint32 {
	port := (*[2]byte)(unsafe.Pointer(&sa.Port))
	binary.BigEndian.PutUint16(port[:], addr.Port())
	if c.family == unix.AF_INET {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Addr = addr.Addr().As4()
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	sa.Flowinfo = 0
	sa.Addr = addr.Addr().As16()
	sa.Scope_id = scope
	return unix.SizeofSockaddrInet6
}

// readControl reads a datagram's control messages: its destination
// address (IPV6_PKTINFO, or IP_PKTINFO on an IPv4 socket; the zero Addr
// when the socket is bound to one address) and its receive time
// (SO_TIMESTAMPNS, in Unix nanoseconds; 0 if absent).
func readControl(oob []byte) (local netip.Addr, arrived int64) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		n := int(h.Len)
		if n < unix.SizeofCmsghdr || n > len(oob) {
			break
		}
		data := oob[unix.CmsgLen(0):n]
		switch {
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SO_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(unix.Timespec{})):
			arrived = (*unix.Timespec)(unsafe.Pointer(&data[0])).Nano()
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			pi := (*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0]))
			local = netip.AddrFrom16(pi.Addr).Unmap()
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			pi := (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0]))
			local = netip.AddrFrom4(pi.Addr) // the header's destination address
		}
		oob = oob[min(unix.CmsgSpace(n-unix.CmsgLen(0)), len(oob)):]
	}
	return local, arrived
}

// encodePktinfo writes the control message that makes a reply leave from
// local, and returns its length. The interface is left to routing.
func (c *linuxConn) encodePktinfo(oob []byte, local netip.Addr) int {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	data := unsafe.Pointer(&oob[unix.CmsgLen(0)])
	if c.family == unix.AF_INET {
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		*(*unix.Inet4Pktinfo)(data) = unix.Inet4Pktinfo{Spec_dst: local.As4()}
		return unix.CmsgSpace(unix.SizeofInet4Pktinfo)
	}
	// A mapped IPv4 source is honoured for IPv4 datagrams sent from a
	// dual-stack socket (Linux ip_cmsg_send accepts IPV6_PKTINFO there).
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	*(*unix.Inet6Pktinfo)(data) = unix.Inet6Pktinfo{Addr: local.As16()}
	return unix.CmsgSpace(unix.SizeofInet6Pktinfo)
}

var _ batchConn = (*linuxConn)(nil)
