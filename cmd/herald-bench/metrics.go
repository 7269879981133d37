package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// promHistogram is one histogram series of a Prometheus text exposition:
// cumulative counts per upper bound, ascending, +Inf last.
type promHistogram struct {
	name   string // the family, without _bucket
	labels string // the series' labels other than le, as written, sorted
	bounds []float64
	counts []float64
}

func (h *promHistogram) String() string {
	if h.labels == "" {
		return h.name
	}
	return h.name + "{" + h.labels + "}"
}

// parsePromHistograms returns every histogram series (the _bucket lines)
// of a Prometheus text exposition, in order of first appearance. Other
// lines are only checked for a name and a value.
func parsePromHistograms(text []byte) ([]promHistogram, error) {
	var out []promHistogram
	index := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, value, err := parsePromSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		base, ok := strings.CutSuffix(name, "_bucket")
		if !ok {
			continue
		}
		var le string
		var rest []string
		for _, l := range labels {
			if l[0] == "le" {
				le = l[1]
			} else {
				rest = append(rest, l[0]+"="+strconv.Quote(l[1]))
			}
		}
		if le == "" {
			return nil, fmt.Errorf("metrics line %d: %s has no le label", n, name)
		}
		// Durations: bounds and counts are not negative, counts finite.
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil || math.IsNaN(bound) || bound < 0 {
			return nil, fmt.Errorf("metrics line %d: le %q is not a non-negative number", n, le)
		}
		if math.IsNaN(value) || math.IsInf(value, 0) || value < 0 {
			return nil, fmt.Errorf("metrics line %d: %s count %v", n, name, value)
		}
		slices.Sort(rest)
		key := base + "{" + strings.Join(rest, ",") + "}"
		i, seen := index[key]
		if !seen {
			i = len(out)
			index[key] = i
			out = append(out, promHistogram{name: base, labels: strings.Join(rest, ",")})
		}
		h := &out[i]
		if k := len(h.bounds); k > 0 && (bound <= h.bounds[k-1] || value < h.counts[k-1]) {
			return nil, fmt.Errorf("metrics line %d: %s buckets out of order", n, h)
		}
		h.bounds = append(h.bounds, bound)
		h.counts = append(h.counts, value)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	for _, h := range out {
		if !math.IsInf(h.bounds[len(h.bounds)-1], 1) {
			return nil, fmt.Errorf("metrics: %s has no +Inf bucket", &h)
		}
	}
	return out, nil
}

// parsePromSample splits `name{k="v",...} value [timestamp]`.
func parsePromSample(line string) (string, [][2]string, float64, error) {
	end := strings.IndexAny(line, "{ \t")
	if end <= 0 {
		return "", nil, 0, fmt.Errorf("no name and value in %q", line)
	}
	name, rest := line[:end], line[end:]
	var labels [][2]string
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			rest = strings.TrimLeft(rest, " \t")
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq <= 0 || len(rest) < eq+2 || rest[eq+1] != '"' {
				return "", nil, 0, fmt.Errorf("%s: bad label in %q", name, line)
			}
			key := strings.TrimSpace(rest[:eq])
			value, after, err := unquoteLabel(rest[eq+2:])
			if err != nil {
				return "", nil, 0, fmt.Errorf("%s: label %s: %w", name, key, err)
			}
			labels = append(labels, [2]string{key, value})
			rest = strings.TrimLeft(after, " \t")
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			} else if !strings.HasPrefix(rest, "}") {
				return "", nil, 0, fmt.Errorf("%s: labels not closed in %q", name, line)
			}
		}
	}
	fields := strings.Fields(rest)
	if len(fields) < 1 || len(fields) > 2 {
		return "", nil, 0, fmt.Errorf("%s: want a value and an optional timestamp, have %q", name, rest)
	}
	v, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return "", nil, 0, fmt.Errorf("%s: value %q: %w", name, fields[0], err)
	}
	return name, labels, v, nil
}

// unquoteLabel reads a label value up to its closing quote (escapes \\, \"
// and \n) and returns it and what follows the quote.
func unquoteLabel(s string) (string, string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 == len(s) {
				return "", "", fmt.Errorf("unterminated escape")
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case '\\', '"':
				b.WriteByte(s[i])
			default:
				return "", "", fmt.Errorf("unknown escape \\%c", s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("unterminated value")
}

// pickServiceHistogram chooses the tracker's response-time histogram for
// protocol among hs: the series named want if given, else a histogram in
// seconds (not the Go runtime's) whose labels say protocol="PROTOCOL" or
// whose name holds the protocol, preferring names about duration, latency
// or service time. Metric names may change between tracker versions, so
// nothing is hard-wired.
func pickServiceHistogram(hs []promHistogram, protocol, want string) (*promHistogram, error) {
	var best *promHistogram
	bestScore := 0
	for i := range hs {
		h := &hs[i]
		forProtocol := strings.Contains(h.labels, `protocol="`+protocol+`"`)
		otherProtocol := !forProtocol && strings.Contains(h.labels, "protocol=")
		score := 0
		switch {
		case otherProtocol:
		case want != "":
			if h.name == want {
				score = 1
			}
		case strings.HasPrefix(h.name, "go_") || strings.HasPrefix(h.name, "process_") || !strings.HasSuffix(h.name, "_seconds"):
		case forProtocol || strings.Contains(h.name, protocol):
			score = 1
			for _, word := range []string{"duration", "latency", "service"} {
				if strings.Contains(h.name, word) && h.name != serviceTimeMetric {
					score = 2 // herald's service time is read apart
				}
			}
		}
		if score > bestScore {
			best, bestScore = h, score
		}
	}
	if best == nil {
		if want != "" {
			return nil, fmt.Errorf("metrics: no histogram %s for protocol %s", want, protocol)
		}
		return nil, fmt.Errorf("metrics: no response-time histogram in seconds for protocol %s; name one with -metrics-histogram", protocol)
	}
	return best, nil
}

// delta returns h minus an earlier reading of the same series.
func (h *promHistogram) delta(before *promHistogram) (*promHistogram, error) {
	if !slices.Equal(h.bounds, before.bounds) {
		return nil, fmt.Errorf("metrics: %s changed its buckets between readings", h)
	}
	d := &promHistogram{name: h.name, labels: h.labels, bounds: h.bounds, counts: make([]float64, len(h.counts))}
	for i := range h.counts {
		d.counts[i] = h.counts[i] - before.counts[i]
		if d.counts[i] < 0 {
			return nil, fmt.Errorf("metrics: %s went backwards (tracker restarted?)", h)
		}
	}
	return d, nil
}

// quantile estimates quantile q as Prometheus's histogram_quantile does:
// linear inside the bucket that holds it, from 0 for the first bucket; in
// the +Inf bucket, the highest finite bound.
func (h *promHistogram) quantile(q float64) float64 {
	total := h.counts[len(h.counts)-1]
	if total <= 0 {
		return 0
	}
	rank := q * total
	i, _ := slices.BinarySearch(h.counts, rank)
	if i >= len(h.bounds)-1 {
		if len(h.bounds) < 2 {
			return 0
		}
		return h.bounds[len(h.bounds)-2]
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = h.bounds[i-1], h.counts[i-1]
	}
	in := h.counts[i] - below
	if in <= 0 {
		return h.bounds[i]
	}
	return lo + (h.bounds[i]-lo)*(rank-below)/in
}

// serviceUS is the tracker's own response time (or, for herald's
// serviceTimeMetric, service time) over the measured window, from its
// histogram, in microseconds.
type serviceUS struct {
	Metric string  `json:"metric"`
	Count  float64 `json:"count"`
	P50    float64 `json:"p50"`
	P99    float64 `json:"p99"`
}

// metricsReader reads one histogram series from a tracker's /metrics.
type metricsReader struct {
	url, protocol, want string
	client              http.Client
}

// serviceTimeMetric is herald's service-time histogram: from when herald
// had read a request to the start of the write of its reply, the wait in
// the socket left out (herald_request_duration_seconds, the response time,
// counts it).
const serviceTimeMetric = "herald_request_service_seconds"

// read returns the chosen histogram and, if the tracker exports it and it
// is not the chosen one, herald's service-time histogram for the protocol.
func (m *metricsReader) read(ctx context.Context) (h, serviceTime *promHistogram, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("metrics: %s: %s", m.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: %s: %w", m.url, err)
	}
	hs, err := parsePromHistograms(body)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", m.url, err)
	}
	if h, err = pickServiceHistogram(hs, m.protocol, m.want); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", m.url, err)
	}
	if st, err := pickServiceHistogram(hs, m.protocol, serviceTimeMetric); err == nil && st.name != h.name {
		serviceTime = st
	}
	return h, serviceTime, nil
}

func newMetricsReader(url, protocol, want string) *metricsReader {
	return &metricsReader{url: url, protocol: protocol, want: want, client: http.Client{Timeout: 5 * time.Second}}
}

// service turns two readings into the window's service times.
func service(before, after *promHistogram) (*serviceUS, error) {
	if before.String() != after.String() {
		return nil, fmt.Errorf("metrics: read %s, then %s", before, after)
	}
	d, err := after.delta(before)
	if err != nil {
		return nil, err
	}
	scale := 1e6 // seconds to µs
	return &serviceUS{
		Metric: d.String(),
		Count:  d.counts[len(d.counts)-1],
		P50:    d.quantile(0.5) * scale,
		P99:    d.quantile(0.99) * scale,
	}, nil
}
