package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"herald/access"
	"herald/cluster"
	"herald/swarm"
)

// opentracker's dynamic access lists: access.fifo_add and
// access.fifo_delete name FIFOs whose lines (40-hex info hashes, as in a
// list file) are added to or removed from the list. herald applies them
// as the API's list changes: to the list file and, with a cluster, to
// every node.

// OpenFIFO opens the FIFO at path, making it (mode 0600) if it does not
// exist, as opentracker does. It is opened for reading and writing, so
// that opening does not wait for a writer and a writer closing it is no
// end of file: one open lasts for every script that writes to it. Call it
// before dropping privileges.
func OpenFIFO(path string) (*os.File, error) {
	if err := syscall.Mkfifo(path, 0o600); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("access fifo %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("access fifo %s: %w", path, err)
	}
	if st.Mode()&fs.ModeNamedPipe == 0 {
		return nil, fmt.Errorf("access fifo %s: exists and is not a FIFO", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("access fifo %s: %w", path, err)
	}
	return f, nil
}

// ReadFIFO applies the lines read from f as ListAdd or ListRemove changes
// until ctx is done, then closes f. What arrives in one read is one
// change, so a script writing many lines at once costs one rewrite of the
// list file. Bad lines are logged with their text and skipped.
func (s *Server) ReadFIFO(ctx context.Context, f *os.File, kind cluster.ChangeKind) {
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	buf := make([]byte, 64<<10)
	var pending []byte
	for {
		n, err := f.Read(buf)
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Error("access fifo: read failed; no longer read", "path", f.Name(), "err", err)
			}
			return
		}
		pending = append(pending, buf[:n]...)
		end := bytes.LastIndexByte(pending, '\n')
		if end < 0 {
			if len(pending) > len(buf) { // no line is that long
				s.cfg.Logger.Warn("access fifo: line skipped", "path", f.Name(), "text", truncate(string(pending)))
				pending = pending[:0]
			}
			continue
		}
		s.applyFIFOLines(f.Name(), kind, pending[:end+1])
		pending = append(pending[:0], pending[end+1:]...)
	}
}

func (s *Server) applyFIFOLines(path string, kind cluster.ChangeKind, lines []byte) {
	set, bad, err := access.Parse(bytes.NewReader(lines))
	for _, b := range bad {
		s.cfg.Logger.Warn("access fifo: line skipped", "path", path, "text", b.Text)
	}
	if err != nil || len(set) == 0 {
		return
	}
	hashes := make([]swarm.InfoHash, 0, len(set))
	for h := range set {
		hashes = append(hashes, h)
	}
	n, err := s.changeList(kind, hashes)
	if err != nil {
		s.cfg.Logger.Error("access fifo: list not changed", "path", path, "err", err)
		return
	}
	s.cfg.Logger.Info("access fifo: list changed", "path", path, "change", kind, "hashes", len(hashes), "changed", n)
}
