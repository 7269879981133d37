package e2e

import (
	"net"
	"os"
	"strconv"
	"sync"
	"testing"

	"herald/internal/heraldtest"
)

func TestMain(m *testing.M) { os.Exit(heraldtest.Main(m)) }

// statScripts stats the client scripts in testdata, which child processes
// read: see heraldtest.StatDirs.
var statScripts = sync.OnceValue(func() error { return heraldtest.StatDirs("testdata", nodeDir) })

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

// startHerald runs herald with -listen on a free port of listenHost
// ("127.0.0.1", "::1" or "::" for dual stack), followed by any further herald
// arguments in args, and returns once both its HTTP and UDP sides answer, on
// the IPv6 loopback when herald listens on the dual-stack wildcard.
func startHerald(t *testing.T, listenHost string, args ...string) *heraldtest.Herald {
	t.Helper()
	if err := statScripts(); err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(heraldtest.FreePort(t, listenHost))
	host := listenHost
	if host == "::" {
		host = "::1"
	}
	listen := []string{"-listen", net.JoinHostPort(listenHost, port), "-log-level", "debug"}
	return heraldtest.Start(t, net.JoinHostPort(host, port), append(listen, args...)...)
}
