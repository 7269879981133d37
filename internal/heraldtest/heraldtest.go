// Package heraldtest runs the herald binary for tests: cmd/herald's, which
// check how the command wires its settings, and e2e's, which put real
// BitTorrent clients in front of it. The binary is built once per test
// process, on the first Start, so `go test -list` and tests that skip build
// nothing.
package heraldtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// Timeout bounds each wait of a herald under test: for it to serve after
// it starts, and to exit after a signal. It is generous because the tests
// share a loaded machine.
const Timeout = 30 * time.Second

// binDir holds the binary once built; Main removes it.
var binDir string

// Main runs a package's tests and then removes the herald binary they
// built. Call it from TestMain: os.Exit(heraldtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	return code
}

// build builds herald once and returns its path.
var build = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "heraldtest-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "herald")
	if out, err := exec.Command("go", "build", "-o", bin, "herald/cmd/herald").CombinedOutput(); err != nil {
		return "", fmt.Errorf("building cmd/herald: %w\n%s", err, out)
	}
	return bin, statInputs()
})

// statInputs stats every file of the packages cmd/herald is built from. go
// test caches a passing result until a file that the test read changes; a
// test that only runs the binary reads none of them, so without this a
// cached pass would hide a change to herald. It runs inside a test (the
// first Start): go test does not see what TestMain reads before m.Run.
func statInputs() error {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "herald/cmd/herald").Output()
	if err != nil {
		return fmt.Errorf("listing cmd/herald's packages: %w", err)
	}
	return StatDirs(strings.Fields(string(out))...)
}

// StatDirs stats every file in dirs, so that go test's cache sees them as
// the test's inputs (see statInputs).
func StatDirs(dirs ...string) error {
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if _, err := os.Stat(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// LogBuffer collects a child process's output; safe for concurrent use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Binary returns the path of the herald binary, building it on the first
// call, for a test that runs it itself (Start is for one that serves).
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Process is a child process whose output is kept for the failure log.
type Process struct {
	Name   string
	Cmd    *exec.Cmd
	output LogBuffer
	exited chan struct{}
	err    error // from Wait, valid once exited is closed
}

// StartProcess starts a program in dir. When the test ends it stops the
// program if it still runs (SIGTERM, then SIGKILL after Timeout) and, if
// the test failed, logs its output.
func StartProcess(t testing.TB, dir, name string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, exited: make(chan struct{})}
	p.Cmd = exec.Command(name, args...)
	p.Cmd.Dir = dir
	p.Cmd.Stdout = &p.output
	p.Cmd.Stderr = &p.output
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Signal(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("%s %q output:\n%s", filepath.Base(name), args, p.output.String())
		}
	})
	return p
}

// Output is what the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.output.String() }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is how the process exited (exec.Cmd.Wait's error); valid once Exited
// is closed.
func (p *Process) Err() error { return p.err }

// Running reports whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Signal sends sig and waits up to Timeout for the process to exit, then
// kills it. It reports whether the process exited within that time.
func (p *Process) Signal(sig os.Signal) bool {
	if !p.Running() {
		return true
	}
	p.Cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return true
	case <-time.After(Timeout):
		p.Kill()
		return false
	}
}

// Kill kills the process, if it still runs, and waits for it to exit.
func (p *Process) Kill() {
	if p.Running() {
		p.Cmd.Process.Kill()
	}
	<-p.exited
}

// Herald is one running herald serving HTTP and UDP on one address.
type Herald struct {
	*Process
	// Host and Port are where clients reach it (set by Start); Addr is
	// both as host:port, URL is "http://" + Addr.
	Host string
	Port int
	Addr string
	URL  string
}

// Start runs herald with args (see Run) and returns once both its HTTP and
// UDP sides answer at addr (host:port, where args or the config file they
// name make it listen).
func Start(t testing.TB, addr string, args ...string) *Herald {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("herald's address %q: %v", addr, err)
	}
	h := Run(t, args...)
	h.Host, h.Addr, h.URL = host, addr, "http://"+addr
	if h.Port, err = strconv.Atoi(port); err != nil {
		t.Fatalf("herald's address %q: %v", addr, err)
	}
	h.WaitTCP(t, addr)
	h.WaitUDP(t, addr)
	return h
}

// Run runs herald with args in a new temporary directory (for the files it
// writes, such as a snapshot), without waiting for it to serve. When the
// test ends it fails the test unless herald, if still running, exits
// cleanly on SIGTERM.
func Run(t testing.TB, args ...string) *Herald {
	t.Helper()
	h := &Herald{Process: StartProcess(t, t.TempDir(), Binary(t), args...)}
	// Runs before StartProcess's cleanup, which logs the output on failure.
	t.Cleanup(func() {
		if !h.Running() {
			return // the test stopped it and checked how
		}
		if !h.Signal(syscall.SIGTERM) {
			t.Errorf("herald did not exit within %v of SIGTERM", Timeout)
		} else if h.err != nil {
			t.Errorf("herald did not exit cleanly on SIGTERM: %v", h.err)
		}
	})
	return h
}

// Stop sends SIGTERM and fails the test unless herald exits cleanly within
// Timeout.
func (h *Herald) Stop(t testing.TB) {
	t.Helper()
	if !h.Signal(syscall.SIGTERM) {
		t.Fatalf("herald did not exit within %v of SIGTERM", Timeout)
	}
	if h.err != nil {
		t.Fatalf("herald did not exit cleanly on SIGTERM: %v", h.err)
	}
}

// AddrOn is host:port for clients on the given loopback address, for a
// dual-stack herald that serves both families.
func (h *Herald) AddrOn(host string) string {
	return net.JoinHostPort(host, strconv.Itoa(h.Port))
}

// WaitTCP polls addr until herald accepts a TCP connection there, failing
// the test if it exits or Timeout passes first.
func (h *Herald) WaitTCP(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		select {
		case <-h.exited:
			t.Fatalf("herald exited before serving: %v", h.err)
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald did not accept TCP on %s within %v: %v", addr, Timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitUDP sends BEP 15 connect requests to addr until herald answers one,
// failing the test if it exits or Timeout passes first.
func (h *Herald) WaitUDP(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatalf("dialing herald's UDP side: %v", err)
	}
	defer conn.Close()
	req := make([]byte, 16)
	binary.BigEndian.PutUint64(req[0:], 0x41727101980) // BEP 15 protocol id
	binary.BigEndian.PutUint32(req[8:], 0)             // action connect
	binary.BigEndian.PutUint32(req[12:], 0x68657261)   // transaction id
	resp := make([]byte, 64)
	for {
		select {
		case <-h.exited:
			t.Fatalf("herald exited before serving: %v", h.err)
		default:
		}
		if _, err := conn.Write(req); err != nil && time.Now().After(deadline) {
			t.Fatalf("sending a UDP connect to herald: %v", err)
		}
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Read(resp)
		if err == nil && n >= 16 && binary.BigEndian.Uint32(resp[0:]) == 0 && bytes.Equal(resp[4:8], req[12:16]) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald did not answer a BEP 15 connect on udp %s within %v (last read: %d bytes, %v)",
				addr, Timeout, n, err)
		}
	}
}

// handedOut holds the ports FreePort has returned in this process. A
// port is free again once FreePort closes its probe, and the kernel can
// give it out again to the next probe before the first caller binds it:
// a test that picked pebble's management port, and then herald's, was
// given the same one twice and pebble could not bind it.
var handedOut struct {
	sync.Mutex
	ports map[int]bool
}

// FreePort returns a port that is free for both TCP and UDP on host, and
// that it has not returned before in this process.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 50 {
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		port := tcp.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		tcp.Close()
		if err == nil {
			udp.Close()
			if !handedOut.ports[port] {
				if handedOut.ports == nil {
					handedOut.ports = map[int]bool{}
				}
				handedOut.ports[port] = true
				return port
			}
		}
	}
	t.Fatalf("no port on %s is free for both TCP and UDP", host)
	return 0
}

// StartNATS runs a NATS server in the test process on a free loopback
// port, for heralds to cluster through, and returns its client URL. It
// stops when the test ends.
func StartNATS(t testing.TB) string {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(Timeout) {
		t.Fatal("NATS not ready")
	}
	return ns.ClientURL()
}
