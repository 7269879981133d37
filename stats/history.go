package stats

import (
	"encoding/hex"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"herald/counters"
	"herald/tracker"
)

// numErrorReasons is how many reasons the dashboard charts errors by: the
// tracker's refusals (tracker.Reason), then the frontends' faults.
const numErrorReasons = int(tracker.NumReasons) + int(counters.NumFaults)

// errorReasonLabels are the reasons' metric labels, as herald_errors_total
// names them.
var errorReasonLabels = func() (l [numErrorReasons]string) {
	for r := range tracker.NumReasons {
		l[r] = tracker.Reason(r).Label()
	}
	for f := range counters.NumFaults {
		l[int(tracker.NumReasons)+int(f)] = f.Label()
	}
	return l
}()

// sample is one sampler tick: cumulative counters and current gauges.
type sample struct {
	at                time.Time
	requests, errors  [counters.NumProtocols]uint64 // cumulative
	reasons           [numErrorReasons]uint64       // cumulative, summed over the protocols
	gauges            [counters.NumProtocols][counters.NumGauges]int64
	torrents, peers   int
	seeders, leechers int
	// p50 and p99 are the response times of the requests answered since
	// the sample before, per protocol, in seconds; NaN when there were none.
	p50, p99 [counters.NumProtocols]float64
	// service99 is the p99 of their service times (counters.Set), the
	// same way.
	service99 [counters.NumProtocols]float64
	use       usage
	// lastSave is when the last snapshot save started; zero before the
	// first or without a snapshot.
	lastSave time.Time
}

// history is the dashboard's ring of recent samples and its latest list of
// busiest torrents. Its memory is fixed at New.
type history struct {
	mu      sync.Mutex
	ring    []sample                                // guarded by mu
	next    int                                     // guarded by mu: where the next sample goes
	count   int                                     // guarded by mu: samples held, up to len(ring)
	latency [counters.NumProtocols]counters.Latency // guarded by mu: as of the last sample
	service [counters.NumProtocols]counters.Latency // guarded by mu: as of the last sample
	top     []topRow                                // guarded by mu
}

// topRow is one busiest torrent as the dashboard shows it.
type topRow struct {
	InfoHash  string `json:"info_hash"`
	Seeders   uint32 `json:"seeders"`
	Leechers  uint32 `json:"leechers"`
	Completed uint32 `json:"completed"`
}

func newHistory(n int) *history { return &history{ring: make([]sample, n)} }

// add records s, the process's usage and the last snapshot save as one
// sample.
func (h *history) add(s Snapshot, use usage, lastSave time.Time) {
	t, c := &s.Totals, &s.Counters
	smp := sample{
		at:       s.Time,
		torrents: s.Torrents, peers: s.Peers,
		seeders: t.Seeders4 + t.Seeders6, leechers: t.Leechers4 + t.Leechers6,
		gauges:   c.Gauges,
		use:      use,
		lastSave: lastSave,
	}
	for p := range counters.NumProtocols {
		smp.requests[p], smp.errors[p] = s.Requests(p), s.Errors(p)
		for r := range tracker.NumReasons {
			smp.reasons[r] += c.Refusals[p][r]
		}
		for f := range counters.NumFaults {
			smp.reasons[int(tracker.NumReasons)+int(f)] += c.Faults[p][f]
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for p := range counters.NumProtocols {
		smp.p50[p] = quantile(&c.Latency[p], &h.latency[p], 0.5)
		smp.p99[p] = quantile(&c.Latency[p], &h.latency[p], 0.99)
		smp.service99[p] = quantile(&c.Service[p], &h.service[p], 0.99)
	}
	h.latency, h.service = c.Latency, c.Service
	h.ring[h.next] = smp
	h.next = (h.next + 1) % len(h.ring)
	h.count = min(h.count+1, len(h.ring))
}

// quantile estimates the q-quantile in seconds of the response times (or
// service times)
// observed between prev and cur (two reads of one histogram), as
// Prometheus's histogram_quantile does: linearly within the bucket that
// holds it. One beyond the last bound reports that bound. NaN when nothing
// was observed.
func quantile(cur, prev *counters.Latency, q float64) float64 {
	if cur.Count < prev.Count {
		prev = &counters.Latency{} // the counters restarted
	}
	n := cur.Count - prev.Count
	if n == 0 {
		return math.NaN()
	}
	rank := q * float64(n)
	lower, below := 0.0, uint64(0)
	for i, bound := range counters.LatencyBuckets {
		upper := bound.Seconds()
		in := cur.Buckets[i] - prev.Buckets[i] // cumulative: requests at or below bound
		if float64(in) >= rank {
			return lower + (upper-lower)*(rank-float64(below))/float64(in-below)
		}
		lower, below = upper, in
	}
	return lower
}

func (h *history) setTop(top Top) {
	rows := make([]topRow, len(top.ByPeers))
	for i, tc := range top.ByPeers {
		rows[i] = topRow{InfoHash: hex.EncodeToString(tc.InfoHash[:]), Seeders: tc.Seeders, Leechers: tc.Leechers, Completed: tc.Completed}
	}
	h.mu.Lock()
	h.top = rows
	h.mu.Unlock()
}

// samples copies the held samples, oldest first, and the top list.
func (h *history) samples() ([]sample, []topRow) {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]sample, 0, h.count)
	start := (h.next - h.count + len(h.ring)) % len(h.ring)
	for i := range h.count {
		out = append(out, h.ring[(start+i)%len(h.ring)])
	}
	return out, h.top
}

// recentRates are HTTP and UDP requests per second over the last ten
// samples; false when fewer than two are held.
func (h *history) recentRates() (httpRate, udpRate uint64, ok bool) {
	smp, _ := h.samples()
	if len(smp) < 2 {
		return 0, 0, false
	}
	first, last := smp[max(len(smp)-11, 0)], smp[len(smp)-1]
	dt := last.at.Sub(first.at).Seconds()
	if dt <= 0 {
		return 0, 0, false
	}
	rate := func(p counters.Protocol) uint64 { return uint64(perSecond(first.requests[p], last.requests[p], dt)) }
	return rate(counters.HTTP), rate(counters.UDP), true
}

// perSecond is the rate of a counter that went from a to b in dt seconds;
// 0 if it went backwards (a frontend restarted its counters).
func perSecond(a, b uint64, dt float64) float64 {
	if b < a {
		return 0
	}
	return float64(b-a) / dt
}

// point is a chart value that may be missing (NaN), which JSON has no
// number for: it is written as null, a gap in the chart.
type point float64

// points is a chart column, written as one JSON array in one buffer (a
// MarshalJSON per value cost an allocation per number).
type points []point

func (col points) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 2+len(col)*8)
	b = append(b, '[')
	for i, p := range col {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(float64(p)) || math.IsInf(float64(p), 0) {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendFloat(b, float64(p), 'g', -1, 64)
		}
	}
	return append(b, ']'), nil
}

// limitUsage is one configured limit and how much of it is used.
type limitUsage struct {
	Limit   int64  `json:"limit"`   // the latest sample's
	Percent points `json:"percent"` // used, per sample
}

// dashboardData is what the dashboard page polls: column arrays ready for
// uPlot (time in Unix seconds first), one entry per sample after the
// oldest, since rates need two samples. Per-protocol series are keyed by
// the protocol's label (udp, http, ws); connections only for protocols
// that have them. A missing value (no request to time, no snapshot yet)
// is null.
type dashboardData struct {
	Version         string               `json:"version"`
	UptimeSeconds   float64              `json:"uptime_seconds"`
	IntervalSeconds float64              `json:"interval_seconds"`
	SlowSeconds     float64              `json:"slow_interval_seconds"`
	Time            []float64            `json:"time"`
	RequestRate     map[string][]float64 `json:"requests_per_second"`
	ErrorRate       map[string][]float64 `json:"errors_per_second"`
	// ErrorsByReason are errors per second, summed over the protocols, by
	// their herald_errors_total reason; only reasons counted in the window.
	ErrorsByReason map[string][]float64 `json:"errors_by_reason"`
	// LatencyP50 and LatencyP99 are response times in milliseconds.
	LatencyP50 map[string]points `json:"latency_p50_ms"`
	LatencyP99 map[string]points `json:"latency_p99_ms"`
	// ServiceP99 is the p99 of the service times in milliseconds.
	ServiceP99  map[string]points  `json:"service_p99_ms"`
	Connections map[string][]int64 `json:"connections"`
	// Limits are the limits that are on, keyed "torrents", "peers",
	// "http connections", "ws connections", "ws torrents", "ws peers".
	Limits   map[string]limitUsage `json:"limits"`
	Torrents []int                 `json:"torrents"`
	Peers    []int                 `json:"peers"`
	Seeders  []int                 `json:"seeders"`
	Leechers []int                 `json:"leechers"`
	// Memory is in bytes: "rss" the resident set, "go_heap" the Go heap's
	// objects, "outside_go" what is resident beyond the Go runtime's own
	// memory (the store's off-heap tables and arenas, thread stacks).
	Memory     map[string]points `json:"memory_bytes"`
	CPUPercent points            `json:"cpu_percent"` // 100 is one core busy
	// SnapshotAge is seconds since the last snapshot save began; null
	// before the first. Snapshot is false when snapshots are off.
	Snapshot    bool     `json:"snapshot"`
	SnapshotAge points   `json:"snapshot_age_seconds"`
	Top         []topRow `json:"top"`
}

// gaugeLimits are the frontends' gauges the dashboard charts against
// their limits, keyed as dashboardData.Limits.
var gaugeLimits = []struct {
	key         string
	p           counters.Protocol
	used, limit counters.Gauge
}{
	{"http connections", counters.HTTP, counters.Connections, counters.ConnectionLimit},
	{"ws connections", counters.WS, counters.Connections, counters.ConnectionLimit},
	{"ws torrents", counters.WS, counters.Swarms, counters.SwarmLimit},
	{"ws peers", counters.WS, counters.Peers, counters.PeerLimit},
}

func (m *Monitor) dashboardData(now time.Time) *dashboardData {
	smp, top := m.history.samples()
	n := max(len(smp)-1, 0)
	d := &dashboardData{
		Version:         m.cfg.Version,
		UptimeSeconds:   now.Sub(m.start).Seconds(),
		IntervalSeconds: m.cfg.SampleEvery.Seconds(),
		SlowSeconds:     m.cfg.SlowEvery.Seconds(),
		Time:            make([]float64, 0, n),
		RequestRate:     make(map[string][]float64, counters.NumProtocols),
		ErrorRate:       make(map[string][]float64, counters.NumProtocols),
		ErrorsByReason:  make(map[string][]float64),
		LatencyP50:      make(map[string]points, counters.NumProtocols),
		LatencyP99:      make(map[string]points, counters.NumProtocols),
		ServiceP99:      make(map[string]points, counters.NumProtocols),
		Connections:     make(map[string][]int64, counters.NumProtocols),
		Limits:          make(map[string]limitUsage),
		Torrents:        make([]int, 0, n),
		Peers:           make([]int, 0, n),
		Seeders:         make([]int, 0, n),
		Leechers:        make([]int, 0, n),
		Memory:          make(map[string]points, 3),
		CPUPercent:      make(points, 0, n),
		Snapshot:        m.cfg.Sources.LastSave != nil,
		SnapshotAge:     make(points, 0, n),
		Top:             top,
	}
	if d.Top == nil {
		d.Top = []topRow{}
	}
	for p := range counters.NumProtocols {
		d.RequestRate[p.Label()] = make([]float64, 0, n)
		d.ErrorRate[p.Label()] = make([]float64, 0, n)
		d.LatencyP50[p.Label()] = make(points, 0, n)
		d.LatencyP99[p.Label()] = make(points, 0, n)
		d.ServiceP99[p.Label()] = make(points, 0, n)
		if hasConnections(p) {
			d.Connections[p.Label()] = make([]int64, 0, n)
		}
	}
	// A limit is charted when the latest sample has it on.
	type limited struct {
		key         string
		used, limit func(*sample) int64
	}
	var limits []limited
	if n > 0 {
		last, bounds := &smp[len(smp)-1], m.store.Config()
		all := []limited{
			{"torrents", func(s *sample) int64 { return int64(s.torrents) }, func(*sample) int64 { return int64(bounds.MaxTorrents) }},
			{"peers", func(s *sample) int64 { return int64(s.peers) }, func(*sample) int64 { return int64(bounds.MaxPeers) }},
		}
		for _, g := range gaugeLimits {
			all = append(all, limited{g.key,
				func(s *sample) int64 { return s.gauges[g.p][g.used] },
				func(s *sample) int64 { return s.gauges[g.p][g.limit] }})
		}
		for _, l := range all {
			if l.limit(last) > 0 {
				limits = append(limits, l)
			}
		}
		for _, l := range limits {
			d.Limits[l.key] = limitUsage{Limit: l.limit(&smp[len(smp)-1]), Percent: make(points, 0, n)}
		}
		for r, label := range errorReasonLabels {
			if smp[len(smp)-1].reasons[r] != smp[0].reasons[r] {
				d.ErrorsByReason[label] = make([]float64, 0, n)
			}
		}
		for _, k := range []string{"rss", "go_heap", "outside_go"} {
			d.Memory[k] = make(points, 0, n)
		}
	}
	for i := 1; i < len(smp); i++ {
		prev, cur := &smp[i-1], &smp[i]
		dt := cur.at.Sub(prev.at).Seconds()
		if dt <= 0 {
			continue
		}
		rate := func(a, b uint64) float64 { return perSecond(a, b, dt) }
		d.Time = append(d.Time, float64(cur.at.UnixMilli())/1000)
		for p := range counters.NumProtocols {
			l := p.Label()
			d.RequestRate[l] = append(d.RequestRate[l], rate(prev.requests[p], cur.requests[p]))
			d.ErrorRate[l] = append(d.ErrorRate[l], rate(prev.errors[p], cur.errors[p]))
			d.LatencyP50[l] = append(d.LatencyP50[l], point(cur.p50[p]*1000))
			d.LatencyP99[l] = append(d.LatencyP99[l], point(cur.p99[p]*1000))
			d.ServiceP99[l] = append(d.ServiceP99[l], point(cur.service99[p]*1000))
			if hasConnections(p) {
				d.Connections[l] = append(d.Connections[l], cur.gauges[p][counters.Connections])
			}
		}
		for r, label := range errorReasonLabels {
			if col, ok := d.ErrorsByReason[label]; ok {
				d.ErrorsByReason[label] = append(col, rate(prev.reasons[r], cur.reasons[r]))
			}
		}
		for _, l := range limits {
			u := d.Limits[l.key]
			pct := math.NaN()
			if lim := l.limit(cur); lim > 0 {
				pct = 100 * float64(l.used(cur)) / float64(lim)
			}
			u.Percent = append(u.Percent, point(pct))
			d.Limits[l.key] = u
		}
		d.Torrents = append(d.Torrents, cur.torrents)
		d.Peers = append(d.Peers, cur.peers)
		d.Seeders = append(d.Seeders, cur.seeders)
		d.Leechers = append(d.Leechers, cur.leechers)
		rss, heap, outside := cur.use.memory()
		d.Memory["rss"] = append(d.Memory["rss"], rss)
		d.Memory["go_heap"] = append(d.Memory["go_heap"], heap)
		d.Memory["outside_go"] = append(d.Memory["outside_go"], outside)
		d.CPUPercent = append(d.CPUPercent, point(cur.use.cpuPercent(&prev.use, dt)))
		age := math.NaN()
		if !cur.lastSave.IsZero() {
			age = max(cur.at.Sub(cur.lastSave).Seconds(), 0)
		}
		d.SnapshotAge = append(d.SnapshotAge, point(age))
	}
	return d
}

// hasConnections reports whether protocol p keeps connections open.
func hasConnections(p counters.Protocol) bool {
	return slices.Contains(counters.Gauges[p], counters.Connections)
}
