package stats

import (
	"encoding/hex"
	"slices"
	"sync"
	"time"

	"herald/counters"
)

// sample is one sampler tick: cumulative counters and current gauges.
type sample struct {
	at                time.Time
	requests, errors  [counters.NumProtocols]uint64 // cumulative
	connections       [counters.NumProtocols]int64
	torrents, peers   int
	seeders, leechers int
}

// history is the dashboard's ring of recent samples and its latest list of
// busiest torrents. Its memory is fixed at New.
type history struct {
	mu    sync.Mutex
	ring  []sample // guarded by mu
	next  int      // guarded by mu: where the next sample goes
	count int      // guarded by mu: samples held, up to len(ring)
	top   []topRow // guarded by mu
}

// topRow is one busiest torrent as the dashboard shows it.
type topRow struct {
	InfoHash  string `json:"info_hash"`
	Seeders   uint32 `json:"seeders"`
	Leechers  uint32 `json:"leechers"`
	Completed uint32 `json:"completed"`
}

func newHistory(n int) *history { return &history{ring: make([]sample, n)} }

func (h *history) add(s Snapshot) {
	t := &s.Totals
	smp := sample{
		at:       s.Time,
		torrents: s.Torrents, peers: s.Peers,
		seeders: t.Seeders4 + t.Seeders6, leechers: t.Leechers4 + t.Leechers6,
	}
	for p := range counters.NumProtocols {
		smp.requests[p], smp.errors[p] = s.Requests(p), s.Errors(p)
		smp.connections[p] = s.Counters.Gauges[p][counters.Connections]
	}
	h.mu.Lock()
	h.ring[h.next] = smp
	h.next = (h.next + 1) % len(h.ring)
	h.count = min(h.count+1, len(h.ring))
	h.mu.Unlock()
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

// dashboardData is what the dashboard page polls: column arrays ready for
// uPlot (time in Unix seconds first), one entry per sample after the
// oldest, since rates need two samples. Per-protocol series are keyed by
// the protocol's label (udp, http, ws); connections only for protocols
// that have them.
type dashboardData struct {
	Version         string               `json:"version"`
	UptimeSeconds   float64              `json:"uptime_seconds"`
	IntervalSeconds float64              `json:"interval_seconds"`
	SlowSeconds     float64              `json:"slow_interval_seconds"`
	Time            []float64            `json:"time"`
	RequestRate     map[string][]float64 `json:"requests_per_second"`
	ErrorRate       map[string][]float64 `json:"errors_per_second"`
	Connections     map[string][]int64   `json:"connections"`
	Torrents        []int                `json:"torrents"`
	Peers           []int                `json:"peers"`
	Seeders         []int                `json:"seeders"`
	Leechers        []int                `json:"leechers"`
	Top             []topRow             `json:"top"`
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
		Connections:     make(map[string][]int64, counters.NumProtocols),
		Torrents:        make([]int, 0, n),
		Peers:           make([]int, 0, n),
		Seeders:         make([]int, 0, n),
		Leechers:        make([]int, 0, n),
		Top:             top,
	}
	if d.Top == nil {
		d.Top = []topRow{}
	}
	for p := range counters.NumProtocols {
		d.RequestRate[p.Label()] = make([]float64, 0, n)
		d.ErrorRate[p.Label()] = make([]float64, 0, n)
		if hasConnections(p) {
			d.Connections[p.Label()] = make([]int64, 0, n)
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
			if hasConnections(p) {
				d.Connections[l] = append(d.Connections[l], cur.connections[p])
			}
		}
		d.Torrents = append(d.Torrents, cur.torrents)
		d.Peers = append(d.Peers, cur.peers)
		d.Seeders = append(d.Seeders, cur.seeders)
		d.Leechers = append(d.Leechers, cur.leechers)
	}
	return d
}

// hasConnections reports whether protocol p keeps connections open.
func hasConnections(p counters.Protocol) bool {
	return slices.Contains(counters.Gauges[p], counters.Connections)
}
