// Package privdrop gives up root after the ports are bound: chroot into a
// directory, then become an unprivileged user, as opentracker does with
// tracker.rootdir and tracker.user.
package privdrop

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Plan is a privilege drop worked out before it happens: the user is looked
// up while /etc/passwd is still reachable.
type Plan struct {
	RootDir  string // absolute; "" for no chroot
	UID, GID int
	User     string
}

// ErrNotRoot means a drop was asked for but the process cannot make it.
var ErrNotRoot = errors.New("privdrop: not running as root")

// Prepare resolves rootDir and userName. With neither set it returns nil.
func Prepare(rootDir, userName string) (*Plan, error) {
	if rootDir == "" && userName == "" {
		return nil, nil
	}
	p := &Plan{User: userName}
	if rootDir != "" {
		abs, err := filepath.Abs(rootDir)
		if err != nil {
			return nil, fmt.Errorf("privdrop: rootdir %q: %w", rootDir, err)
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("privdrop: rootdir %q is not a directory", rootDir)
		}
		p.RootDir = abs
	}
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			return nil, fmt.Errorf("privdrop: user %q: %w", userName, err)
		}
		p.UID, _ = strconv.Atoi(u.Uid)
		p.GID, _ = strconv.Atoi(u.Gid)
	}
	return p, nil
}

// Paths returns how a configured file path is named now and after the
// drop. With a chroot, a relative path is relative to the root directory
// (herald works there afterwards, as opentracker does), and an absolute
// path must lie inside it; a file outside cannot be reached afterwards, so
// that is an error naming it.
func (p *Plan) Paths(path string) (now, after string, err error) {
	if p == nil || p.RootDir == "" {
		abs, err := filepath.Abs(path)
		return abs, abs, err
	}
	now = path
	if !filepath.IsAbs(path) {
		now = filepath.Join(p.RootDir, path)
	}
	rel, err := filepath.Rel(p.RootDir, filepath.Clean(now))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", "", fmt.Errorf("privdrop: %s is outside tracker.rootdir %s and would be unreachable after the chroot", path, p.RootDir)
	}
	return filepath.Clean(now), filepath.Join("/", rel), nil
}

// Drop performs the plan: chroot and chdir to the new root, then set the
// group and user ids. Go applies setuid/setgid to every thread.
func (p *Plan) Drop() error {
	if p == nil {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: cannot chroot to %q or become %q", ErrNotRoot, p.RootDir, p.User)
	}
	if p.RootDir != "" {
		if err := syscall.Chroot(p.RootDir); err != nil {
			return fmt.Errorf("privdrop: chroot %s: %w", p.RootDir, err)
		}
		if err := os.Chdir("/"); err != nil {
			return fmt.Errorf("privdrop: chdir / in the chroot: %w", err)
		}
	}
	if p.User != "" {
		if err := syscall.Setgroups([]int{p.GID}); err != nil {
			return fmt.Errorf("privdrop: setgroups: %w", err)
		}
		if err := syscall.Setgid(p.GID); err != nil {
			return fmt.Errorf("privdrop: setgid %d: %w", p.GID, err)
		}
		if err := syscall.Setuid(p.UID); err != nil {
			return fmt.Errorf("privdrop: setuid %d: %w", p.UID, err)
		}
		if os.Geteuid() == 0 && p.UID != 0 {
			return errors.New("privdrop: still root after setuid")
		}
	}
	return nil
}
