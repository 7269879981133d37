package stats

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// processCollector exports the process_* metrics of client_golang's
// process collector, reading /proc through a directory opened at start:
// after a chroot into tracker.rootdir, /proc is out of reach by name, but
// not through a descriptor opened before.
type processCollector struct {
	proc  *os.Root
	start float64 // Unix seconds
}

// userHZ is the unit of the times in /proc/self/stat: USER_HZ, 100 on
// every Linux architecture Go supports (as procfs assumes too).
const userHZ = 100

var (
	procCPUDesc     = prometheus.NewDesc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", nil, nil)
	procOpenFDsDesc = prometheus.NewDesc("process_open_fds", "Number of open file descriptors.", nil, nil)
	procMaxFDsDesc  = prometheus.NewDesc("process_max_fds", "Maximum number of open file descriptors.", nil, nil)
	procVSizeDesc   = prometheus.NewDesc("process_virtual_memory_bytes", "Virtual memory size in bytes.", nil, nil)
	procVMaxDesc    = prometheus.NewDesc("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", nil, nil)
	procRSSDesc     = prometheus.NewDesc("process_resident_memory_bytes", "Resident memory size in bytes.", nil, nil)
	procStartDesc   = prometheus.NewDesc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", nil, nil)
)

// newProcessCollector opens /proc; call it before any chroot.
func newProcessCollector() (*processCollector, error) {
	proc, err := os.OpenRoot("/proc")
	if err != nil {
		return nil, err
	}
	c := &processCollector{proc: proc}
	boot, err := bootTime(proc)
	if err == nil {
		var st procStat
		if st, err = readStat(proc); err == nil {
			c.start = boot + float64(st.startTicks)/userHZ
		}
	}
	if err != nil {
		proc.Close()
		return nil, err
	}
	return c, nil
}

func (c *processCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{procCPUDesc, procOpenFDsDesc, procMaxFDsDesc, procVSizeDesc, procVMaxDesc, procRSSDesc, procStartDesc} {
		ch <- d
	}
}

func (c *processCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(procStartDesc, prometheus.GaugeValue, c.start)
	if st, err := readStat(c.proc); err != nil {
		ch <- prometheus.NewInvalidMetric(procCPUDesc, err)
	} else {
		ch <- prometheus.MustNewConstMetric(procCPUDesc, prometheus.CounterValue, float64(st.utime+st.stime)/userHZ)
		ch <- prometheus.MustNewConstMetric(procVSizeDesc, prometheus.GaugeValue, float64(st.vsize))
		ch <- prometheus.MustNewConstMetric(procRSSDesc, prometheus.GaugeValue, float64(st.rssPages*uint64(os.Getpagesize())))
	}
	if d, err := c.proc.Open("self/fd"); err != nil {
		ch <- prometheus.NewInvalidMetric(procOpenFDsDesc, err)
	} else {
		names, err := d.Readdirnames(-1)
		d.Close()
		if err != nil {
			ch <- prometheus.NewInvalidMetric(procOpenFDsDesc, err)
		} else {
			ch <- prometheus.MustNewConstMetric(procOpenFDsDesc, prometheus.GaugeValue, float64(len(names)-1)) // less the one reading it
		}
	}
	limits, err := c.proc.ReadFile("self/limits")
	if err != nil {
		ch <- prometheus.NewInvalidMetric(procMaxFDsDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(procMaxFDsDesc, prometheus.GaugeValue, softLimit(limits, "Max open files"))
	ch <- prometheus.MustNewConstMetric(procVMaxDesc, prometheus.GaugeValue, softLimit(limits, "Max address space"))
}

type procStat struct {
	utime, stime, startTicks, vsize, rssPages uint64
}

// readStat reads the fields of /proc/self/stat the metrics need (proc(5)).
func readStat(proc *os.Root) (procStat, error) {
	data, err := proc.ReadFile("self/stat")
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces and ')'.
	i := bytes.LastIndexByte(data, ')')
	f := strings.Fields(string(data[i+1:]))
	if i < 0 || len(f) < 22 {
		return procStat{}, fmt.Errorf("stats: /proc/self/stat: %d fields", len(f))
	}
	// f[0] is field 3 (state): field n is f[n-3].
	var st procStat
	for _, v := range []struct {
		dst   *uint64
		field int
	}{{&st.utime, 14}, {&st.stime, 15}, {&st.startTicks, 22}, {&st.vsize, 23}, {&st.rssPages, 24}} {
		if *v.dst, err = strconv.ParseUint(f[v.field-3], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("stats: /proc/self/stat field %d: %w", v.field, err)
		}
	}
	return st, nil
}

// bootTime reads btime from /proc/stat.
func bootTime(proc *os.Root) (float64, error) {
	data, err := proc.ReadFile("stat")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, errors.New("stats: /proc/stat has no btime")
}

// softLimit returns the soft limit of the named row of /proc/self/limits;
// "unlimited" is the largest uint64, as client_golang reports it.
func softLimit(limits []byte, name string) float64 {
	for line := range strings.Lines(string(limits)) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 || f[0] == "unlimited" {
			return float64(^uint64(0))
		}
		n, _ := strconv.ParseFloat(f[0], 64)
		return n
	}
	return 0
}

// usage is the process's CPU time and memory at one sample. A figure that
// could not be read is negative.
type usage struct {
	cpu    time.Duration // user and system time since start
	rss    int64
	goHeap int64 // bytes in heap objects, live or not yet swept
	// goResident is what the Go runtime holds from the OS, less what it
	// has handed back: everything of the process's but memory mapped
	// outside the runtime (the store's tables and arenas) and the binary.
	goResident int64
}

// memory returns the resident set, the Go heap and what is resident
// outside the Go runtime, in bytes; NaN for what is unknown.
func (u *usage) memory() (rss, heap, outside point) {
	rss, heap, outside = point(math.NaN()), point(math.NaN()), point(math.NaN())
	if u.rss >= 0 {
		rss = point(u.rss)
		if u.goResident >= 0 {
			outside = point(max(u.rss-u.goResident, 0))
		}
	}
	if u.goHeap >= 0 {
		heap = point(u.goHeap)
	}
	return rss, heap, outside
}

// cpuPercent is the CPU used between prev and u, dt seconds apart, in
// percent of one core; NaN when unknown.
func (u *usage) cpuPercent(prev *usage, dt float64) float64 {
	if u.cpu < 0 || prev.cpu < 0 || u.cpu < prev.cpu {
		return math.NaN()
	}
	return 100 * (u.cpu - prev.cpu).Seconds() / dt
}

// usageReader reads usage: /proc through a directory opened before any
// chroot, and the Go runtime's memory classes. It is for one goroutine
// (the sampler).
type usageReader struct {
	proc    *os.Root // nil off Linux
	samples []metrics.Sample
}

// The runtime/metrics the dashboard reads, in usageReader.samples order.
var usageMetrics = []string{
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
}

func newUsageReader(proc *os.Root) *usageReader {
	r := &usageReader{proc: proc, samples: make([]metrics.Sample, len(usageMetrics))}
	for i, name := range usageMetrics {
		r.samples[i].Name = name
	}
	return r
}

func (r *usageReader) read() usage {
	u := usage{cpu: -1, rss: -1, goHeap: -1, goResident: -1}
	if r.proc != nil {
		if st, err := readStat(r.proc); err == nil {
			u.cpu = time.Duration(st.utime+st.stime) * (time.Second / userHZ)
			u.rss = int64(st.rssPages) * int64(os.Getpagesize())
		}
	}
	metrics.Read(r.samples)
	value := func(i int) int64 {
		if r.samples[i].Value.Kind() != metrics.KindUint64 {
			return -1
		}
		return int64(r.samples[i].Value.Uint64())
	}
	u.goHeap = value(0)
	if total, released := value(1), value(2); total >= 0 && released >= 0 {
		u.goResident = total - released
	}
	return u
}
