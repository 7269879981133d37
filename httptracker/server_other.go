//go:build !linux || nofastpath

package httptracker

import (
	"fmt"
	"net"
)

// fastPath is empty where there is no epoll: net/http answers every
// request, from a plain listener.
type fastPath struct{}

func (*fastPath) size() int          { return 0 }
func (*fastPath) start(chan<- error) {}
func (*fastPath) stop()              {}

// listen binds addr for net/http, within the connection limit.
func (s *Server) listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("httptracker: listen %s: %w", addr, err)
	}
	s.addr = ln.Addr().(*net.TCPAddr).AddrPort()
	s.listener = &limitListener{Listener: ln, limit: &s.limit}
	return nil
}

// limitListener closes the connections beyond the limit as it accepts
// them, as the event loops do.
type limitListener struct {
	net.Listener
	limit *connLimit
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
		if l.limit.admit(client) {
			return &handedConn{Conn: c, limit: l.limit, client: client}, nil
		}
		c.Close()
	}
}
