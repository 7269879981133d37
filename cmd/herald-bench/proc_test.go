package main

import (
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and parentheses, as a process may choose.
	stat := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 37 0 0 20 0 3 0 100 1000 200 18446744073709551615\n"
	user, sys, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if user != 150 || sys != 37 {
		t.Errorf("utime, stime = %d, %d, want 150, 37", user, sys)
	}
	if _, _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("accepted a truncated stat line")
	}
}

func TestParseStatusRSS(t *testing.T) {
	got, err := parseStatusRSS([]byte("Name:\topentracker\nVmHWM:\t   30000 kB\nVmRSS:\t   21856 kB\nThreads:\t4\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got != 21856*1024 {
		t.Errorf("got %d", got)
	}
	if _, err := parseStatusRSS([]byte("Name:\tzombie\n")); err == nil {
		t.Error("accepted a status without VmRSS (a zombie has none)")
	}
}

func TestSampleOwnProcess(t *testing.T) {
	before, err := sampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the counter moves by 10 ticks; on a busy machine that
	// takes longer than 10 ticks of wall time, but it must happen.
	var after procSample
	for deadline := time.Now().Add(20 * time.Second); ; {
		for end := time.Now().Add(10 * time.Millisecond); time.Now().Before(end); {
		}
		if after, err = sampleProc(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		if after.cpuTicks-before.cpuTicks >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("20s of spinning counted %d ticks", after.cpuTicks-before.cpuTicks)
		}
	}
	// sysmon alone sleeps and wakes many times in 10 ticks.
	if after.runs <= before.runs {
		t.Errorf("threads put on a CPU %d times, then %d", before.runs, after.runs)
	}
	if after.rssBytes < 1<<20 {
		t.Errorf("RSS %d bytes", after.rssBytes)
	}
	// The run time agrees with the ticks, to the ticks' resolution (10 ms
	// each, and a tick's worth at either end).
	ran := time.Duration(after.cpuNanos - before.cpuNanos)
	ticked := time.Duration(after.cpuTicks-before.cpuTicks) * time.Second / time.Duration(clockTicks())
	if before.cpuNanos == 0 || ran < ticked-30*time.Millisecond || ran > ticked+30*time.Millisecond {
		t.Errorf("threads ran %v, ticks say %v", ran, ticked)
	}
}

func TestParseSchedstat(t *testing.T) {
	nanos, runs, err := parseSchedstat([]byte("101017 2305 7\n"))
	if err != nil || nanos != 101017 || runs != 7 {
		t.Errorf("got %d ns, %d runs, %v; want 101017 ns, 7 runs", nanos, runs, err)
	}
	for _, bad := range []string{"", "1 2", "x 2 3", "-1 2 3", "1 2 x", "1 2 -3"} {
		if _, _, err := parseSchedstat([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseSchedstat(f *testing.F) {
	f.Add([]byte("101017 0 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = parseSchedstat(b) })
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 1 0 1 1 1\n"))
	f.Add([]byte("1 ()) S"))
	f.Fuzz(func(t *testing.T, stat []byte) {
		_, _, _ = parseStatCPU(stat)
	})
}

func FuzzParseStatusRSS(f *testing.F) {
	f.Add([]byte("VmRSS:\t   21856 kB\n"))
	f.Add([]byte("VmRSS: x kB"))
	f.Fuzz(func(t *testing.T, status []byte) {
		if v, err := parseStatusRSS(status); err == nil && v < 0 {
			t.Fatalf("negative RSS %d", v)
		}
	})
}
