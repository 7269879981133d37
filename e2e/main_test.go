package e2e

import (
	"bytes"
	"encoding/binary"
	"flag"
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
)

// heraldBin is the herald binary that TestMain builds once for all tests.
var heraldBin string

func TestMain(m *testing.M) {
	flag.Parse()
	// `go test -list` (used by .ci/run to find fuzz targets) runs no test,
	// and -short skips every test here.
	if f := flag.Lookup("test.list"); testing.Short() || f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "herald-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: making a temporary directory:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	heraldBin = filepath.Join(dir, "herald")
	build := exec.Command("go", "build", "-o", heraldBin, "herald/cmd/herald")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building cmd/herald: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// statInputs stats every file of the packages cmd/herald is built from and
// the client scripts in testdata. go test caches a passing result until a
// file that a test read changes; these files are read by child processes,
// not by the test, so without this a cached pass would hide a change to
// herald or to a script. It must run inside a test: go test does not see
// what TestMain reads before m.Run.
var statInputs = sync.OnceValue(func() error {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "herald/cmd/herald").Output()
	if err != nil {
		return fmt.Errorf("listing cmd/herald's packages: %w", err)
	}
	for _, dir := range append(strings.Fields(string(out)), "testdata", nodeDir) {
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
})

// requireClient, which every test calls first, skips the test when a client
// it drives is not installed.
// Under `make test`, which installs every client first, E2E_REQUIRE_CLIENTS=1
// turns the skip into a failure so that a broken install cannot pass quietly.
func requireClient(t *testing.T, name string, installed bool) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e tests run real clients; skipped with -short")
	}
	if installed {
		return
	}
	if os.Getenv("E2E_REQUIRE_CLIENTS") == "1" {
		t.Fatalf("%s not installed (E2E_REQUIRE_CLIENTS=1); run make test", name)
	}
	t.Skipf("%s not installed; run make test", name)
}

// logBuffer collects a child process's output for the failure log.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a child process whose output is kept for the failure log.
type process struct {
	name   string
	cmd    *exec.Cmd
	output logBuffer
	exited chan struct{}
	err    error // from Wait, valid once exited is closed
}

// startProcess starts a program in dir. When the test ends it stops the
// program if it still runs and, if the test failed, logs its output.
func startProcess(t *testing.T, dir, name string, args ...string) *process {
	t.Helper()
	p := &process{name: name, exited: make(chan struct{})}
	p.cmd = exec.Command(name, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout = &p.output
	p.cmd.Stderr = &p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.terminate()
		if t.Failed() {
			t.Logf("%s %q output:\n%s", filepath.Base(name), args, p.output.String())
		}
	})
	return p
}

// terminate sends SIGTERM, waits up to 10 s, then kills. It reports whether
// the process exited within that time.
func (p *process) terminate() bool { return p.signal(syscall.SIGTERM) }

// signal sends sig, waits up to 10 s, then kills. It reports whether the
// process exited within that time.
func (p *process) signal(sig os.Signal) bool {
	select {
	case <-p.exited:
		return true
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return true
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return false
	}
}

// running reports whether the process has not exited yet.
func (p *process) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// heraldProcess is one running herald serving HTTP and UDP on one port.
type heraldProcess struct {
	*process
	// host is the address clients dial: the listen address, or the IPv6
	// loopback when herald listens on the dual-stack wildcard.
	host string
	port int
}

// startHerald runs herald with -listen on a free port of listenHost
// ("127.0.0.1", "::1" or "::" for dual stack), followed by any further herald
// arguments in args, and returns once both its HTTP and UDP sides answer.
// When the test ends it fails the test unless herald exits cleanly on SIGTERM.
func startHerald(t *testing.T, listenHost string, args ...string) *heraldProcess {
	t.Helper()
	if err := statInputs(); err != nil {
		t.Fatal(err)
	}
	port := freePort(t, listenHost)
	h := &heraldProcess{host: listenHost, port: port}
	if listenHost == "::" {
		h.host = "::1"
	}
	listen := net.JoinHostPort(listenHost, strconv.Itoa(port))
	// The directory is for any file herald writes, such as a snapshot.
	h.process = startProcess(t, t.TempDir(), heraldBin, append([]string{"-listen", listen, "-log-level", "debug"}, args...)...)
	// Runs before startProcess's cleanup, which logs the output on failure.
	t.Cleanup(func() {
		if !h.terminate() {
			t.Errorf("herald did not exit within 10 s of SIGTERM")
		} else if h.err != nil {
			t.Errorf("herald did not exit cleanly on SIGTERM: %v", h.err)
		}
	})
	h.waitReady(t)
	return h
}

// freePort returns a port that is free for both TCP and UDP on host.
func freePort(t *testing.T, host string) int {
	t.Helper()
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
			return port
		}
	}
	t.Fatalf("no port on %s is free for both TCP and UDP", host)
	return 0
}

// addr is host:port for clients of this herald on its own address family.
func (h *heraldProcess) addr() string {
	return net.JoinHostPort(h.host, strconv.Itoa(h.port))
}

// addrOn is host:port for clients on the given loopback address, for a
// dual-stack herald that serves both families.
func (h *heraldProcess) addrOn(host string) string {
	return net.JoinHostPort(host, strconv.Itoa(h.port))
}

// waitReady polls the TCP port until herald accepts, then sends BEP 15
// connect requests until its UDP side answers one.
func (h *heraldProcess) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-h.exited:
			t.Fatalf("herald exited before serving: %v", h.err)
		default:
		}
		conn, err := net.DialTimeout("tcp", h.addr(), 200*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald did not accept TCP on %s within 10 s: %v", h.addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn, err := net.Dial("udp", h.addr())
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
		if _, err := conn.Write(req); err != nil && time.Now().After(deadline) {
			t.Fatalf("sending a UDP connect to herald: %v", err)
		}
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := conn.Read(resp)
		if err == nil && n >= 16 && binary.BigEndian.Uint32(resp[0:]) == 0 && bytes.Equal(resp[4:8], req[12:16]) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald did not answer a BEP 15 connect on udp %s within 10 s (last read: %d bytes, %v)",
				h.addr(), n, err)
		}
	}
}
