package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// clock gives monotonic nanoseconds since the run began; cheaper to compare
// and store than time.Time.
type clock struct{ base time.Time }

func newClock() *clock { return &clock{base: time.Now()} }

func (c *clock) now() int64 { return int64(time.Since(c.base)) }

// window is the measurement interval: only events inside it count, so the
// warm-up and the drain after the end stay out of the figures.
type window struct{ start, end atomic.Int64 }

func newWindow() *window {
	w := &window{}
	w.start.Store(math.MaxInt64)
	w.end.Store(math.MaxInt64)
	return w
}

func (w *window) in(t int64) bool { return t >= w.start.Load() && t < w.end.Load() }

// missed returns how many requests due every interval ns from from to to
// fall inside the window.
func (w *window) missed(from, to, interval float64) uint64 {
	from = max(from, float64(w.start.Load()))
	to = min(to, float64(w.end.Load()))
	if to <= from {
		return 0
	}
	return uint64((to - from) / interval)
}

// procSample is a tracker process's CPU time and resident set at one moment.
type procSample struct {
	cpuTicks uint64 // utime + stime, all threads
	sysTicks uint64 // stime: in the kernel on the tracker's behalf
	// cpuNanos is the run time of the live threads, to the nanosecond
	// (/proc/PID/task/*/schedstat). /proc/PID/stat counts in ticks of 10 ms:
	// at 100 requests/s a tracker that spends 45 µs on each uses 4.5 ms/s,
	// under half a tick per second. A thread that exits takes its time with
	// it; trackers keep theirs for the run. 0 where schedstat is missing.
	cpuNanos uint64
	// runs counts the times the live threads were put on a CPU (schedstat's
	// third field): the tracker's wake-ups, and its preemptions. At light
	// load each wake-up from an idle core is most of a response's CPU, and
	// what it costs swings with the host's other work from one run to the
	// next, where the count does not. 0 where schedstat is missing.
	runs     uint64
	rssBytes int64
}

// clockTicks is the unit of /proc/PID/stat times (USER_HZ), from getconf;
// Linux has used 100 on every architecture for decades, the fallback.
func clockTicks() float64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return 100
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || v <= 0 {
		return 100
	}
	return v
}

func sampleProc(pid int) (procSample, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("tracker cpu: %w", err)
	}
	user, sys, err := parseStatCPU(stat)
	if err != nil {
		return procSample{}, fmt.Errorf("tracker cpu: pid %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procSample{}, fmt.Errorf("tracker rss: %w", err)
	}
	rss, err := parseStatusRSS(status)
	if err != nil {
		return procSample{}, fmt.Errorf("tracker rss: pid %d: %w", pid, err)
	}
	p := procSample{cpuTicks: user + sys, sysTicks: sys, rssBytes: rss}
	p.cpuNanos, p.runs = threadsSchedstat(pid)
	return p, nil
}

// threadsSchedstat sums the run time of pid's threads, and the times they
// were put on a CPU, from their schedstat files; 0s if any cannot be read
// (a kernel without schedstat, or a thread that ended while being read:
// the sample then falls back to ticks).
func threadsSchedstat(pid int) (nanos, runs uint64) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			return 0, 0
		}
		ns, n, err := parseSchedstat(b)
		if err != nil {
			return 0, 0
		}
		nanos += ns
		runs += n
	}
	return nanos, runs
}

// parseSchedstat returns the first and third of schedstat's three fields:
// the time the thread has run on a CPU, in nanoseconds, and how many
// times it was put on one.
func parseSchedstat(b []byte) (nanos, runs uint64, err error) {
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 0, 0, fmt.Errorf("schedstat: %d fields, want 3", len(f))
	}
	if nanos, err = strconv.ParseUint(f[0], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("schedstat: run time %q", f[0])
	}
	if runs, err = strconv.ParseUint(f[2], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("schedstat: timeslices %q", f[2])
	}
	return nanos, runs, nil
}

// parseStatCPU returns utime and stime (fields 14 and 15) from
// /proc/PID/stat. Their sum is the process's exact run time; the kernel
// splits it between them in proportion to its tick samples, so the split
// is an estimate that is good over seconds.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(stat []byte) (user, sys uint64, err error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("stat: no command name")
	}
	fields := strings.Fields(string(stat[i+1:]))
	// fields[0] is field 3 (state), so field n is fields[n-3].
	if len(fields) < 13 {
		return 0, 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(fields))
	}
	utime, err1 := strconv.ParseUint(fields[11], 10, 64)
	stime, err2 := strconv.ParseUint(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("stat: utime %q stime %q", fields[11], fields[12])
	}
	return utime, stime, nil
}

// parseStatusRSS returns VmRSS from /proc/PID/status, in bytes.
func parseStatusRSS(status []byte) (int64, error) {
	for line := range strings.Lines(string(status)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: VmRSS line %q", strings.TrimSpace(line))
		}
		kb, err := strconv.ParseUint(f[0], 10, 53) // bytes fit an int64
		if err != nil {
			return 0, fmt.Errorf("status: VmRSS %q: %w", f[0], err)
		}
		return int64(kb) * 1024, nil
	}
	return 0, fmt.Errorf("status: no VmRSS line")
}
