//go:build !linux || nofastpath

package httptracker

// fastPath is empty where there is no epoll: net/http answers every
// request, from a plain listener.
type fastPath struct{}

func (*fastPath) size() int          { return 0 }
func (*fastPath) start(chan<- error) {}
func (*fastPath) stop()              {}

// listen binds addr for net/http, within the connection limits.
func (s *Server) listen(addr string) (err error) {
	s.listener, err = s.listenPlain(addr)
	return err
}
