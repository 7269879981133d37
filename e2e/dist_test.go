package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"herald/version"
)

// repoRoot is the checkout's top directory (tests run in e2e/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildStatic builds herald as the packaging does: static (CGO_ENABLED=0,
// what a FROM scratch image needs) and stamped with its commit
// (-buildvcs=true overrides a GOFLAGS=-buildvcs=false in the environment).
func buildStatic(t *testing.T, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=true", "-o", out, "./cmd/herald")
	cmd.Dir = repoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building herald: %v\n%s", err, b)
	}
}

// wantVersionLine is the line -v must print for a binary built from this
// checkout: the release and, where the toolchain can read the commit (a
// clone; git worktrees are not recognised by go build), the commit.
func wantVersionLine(t *testing.T) *regexp.Regexp {
	t.Helper()
	root := repoRoot(t)
	want := "^herald " + regexp.QuoteMeta(version.Release) + ` \(commit `
	if fi, err := os.Stat(filepath.Join(root, ".git")); err == nil && fi.IsDir() {
		head, err := exec.Command("git", "-C", root, "rev-parse", "HEAD").Output()
		if err != nil {
			t.Fatalf("git rev-parse HEAD: %v", err)
		}
		want += regexp.QuoteMeta(strings.TrimSpace(string(head))[:12])
	} else {
		t.Logf("%s/.git is not a directory (a worktree?): the commit cannot be stamped, checking the release only", root)
	}
	return regexp.MustCompile(want)
}

// Every spelling of the version flag prints the release and the commit.
func TestVersionFlags(t *testing.T) {
	requireClient(t, "git", commandExists("git"))
	bin := filepath.Join(t.TempDir(), "herald")
	buildStatic(t, bin)
	want := wantVersionLine(t)
	for _, flag := range []string{"-v", "-version", "--version"} {
		out, err := exec.Command(bin, flag).CombinedOutput()
		if err != nil {
			t.Fatalf("herald %s: %v\n%s", flag, err, out)
		}
		if !want.Match(out) {
			t.Errorf("herald %s printed %q, want a line matching %s", flag, out, want)
		}
	}
}

// The systemd unit passes systemd-analyze verify and keeps its sandbox:
// an exposure score of 2.0 or less ("OK") in systemd-analyze security.
func TestSystemdUnit(t *testing.T) {
	requireClient(t, "systemd (systemd-analyze)", commandExists("systemd-analyze"))
	dir := t.TempDir()
	bin := filepath.Join(dir, "herald")
	buildStatic(t, bin)
	unit, err := os.ReadFile(filepath.Join(repoRoot(t), "dist", "herald.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/herald ") {
		t.Fatal("dist/herald.service: ExecStart does not run /usr/bin/herald")
	}
	// verify checks that ExecStart's binary exists: point it at this build.
	path := filepath.Join(dir, "herald.service")
	unit = []byte(strings.ReplaceAll(string(unit), "/usr/bin/herald", bin))
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	verify := exec.Command("systemd-analyze", "verify", "--man=no", path)
	if out, err := verify.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for herald\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security: exposure %.1f", score)
	if score > 2.0 {
		t.Errorf("exposure level %.1f, want at most 2.0 (systemd's OK band); the sandbox directives were weakened:\n%s", score, out)
	}
}

// dist/Containerfile builds an image of the static binary alone that runs
// as an unprivileged user and serves on 6969. This sandbox refuses the
// container runtime's rlimit change, so the binary is copied out of the
// image and run here; `podman run` is tried too and must agree when it works.
func TestContainerImage(t *testing.T) {
	requireClient(t, "podman", commandExists("podman"))
	ctx := t.TempDir()
	buildStatic(t, filepath.Join(ctx, "herald"))
	if err := os.Mkdir(filepath.Join(ctx, "state"), 0o755); err != nil {
		t.Fatal(err)
	}
	tag := "localhost/herald-test:" + strconv.Itoa(os.Getpid())
	podman := func(args ...string) []byte {
		t.Helper()
		out, err := exec.Command("podman", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	podman("build", "-q", "-f", filepath.Join(repoRoot(t), "dist", "Containerfile"), "-t", tag, ctx)
	t.Cleanup(func() { exec.Command("podman", "rmi", "-f", tag).Run() })

	conf := strings.TrimSpace(string(podman("image", "inspect", tag, "--format",
		"{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}")))
	want := `65534:65534|["/usr/bin/herald"]|{"6969/tcp":{},"6969/udp":{}}|{"/var/lib/herald":{}}`
	if conf != want {
		t.Errorf("image config %s, want %s", conf, want)
	}

	name := "herald-test-" + strconv.Itoa(os.Getpid())
	podman("create", "--name", name, tag)
	t.Cleanup(func() { exec.Command("podman", "rm", "-f", name).Run() })
	bin := filepath.Join(t.TempDir(), "herald")
	podman("cp", name+":/usr/bin/herald", bin)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the image's herald is dynamically linked; a scratch image has no loader")
		}
	}
	out, err := exec.Command(bin, "-v").CombinedOutput()
	if err != nil {
		t.Fatalf("the image's herald -v: %v\n%s", err, out)
	}
	if re := wantVersionLine(t); !re.Match(out) {
		t.Errorf("the image's herald -v printed %q, want %s", out, re)
	}
	if run, err := exec.Command("podman", "run", "--rm", tag, "-v").CombinedOutput(); err != nil {
		t.Logf("podman run refused here (%v: %s); checked the image's binary outside it", err, strings.TrimSpace(string(run)))
	} else if string(run) != string(out) {
		t.Errorf("podman run %s -v printed %q, the binary %q", tag, run, out)
	}
}

// commandExists reports whether name is on PATH.
func commandExists(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}
