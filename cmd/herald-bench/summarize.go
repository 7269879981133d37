package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// metric is one figure the summary takes from each JSON line.
type metric struct {
	name string
	get  func(*result) (float64, bool)
}

var metrics = []metric{
	{"valid_per_s", func(r *result) (float64, bool) { return r.ValidPerSec, r.Fill == nil }},
	{"cpu_us_per_valid", func(r *result) (float64, bool) {
		if r.CPUPerValid == nil || r.Fill != nil {
			return 0, false
		}
		return *r.CPUPerValid, true
	}},
	{"cpu_sys_us_per_valid", func(r *result) (float64, bool) {
		if r.CPUSysPerValid == nil || r.Fill != nil {
			return 0, false
		}
		return *r.CPUSysPerValid, true
	}},
	{"runs_per_valid", func(r *result) (float64, bool) {
		if r.RunsPerValid == nil || r.Fill != nil {
			return 0, false
		}
		return *r.RunsPerValid, true
	}},
	{"p50_us", func(r *result) (float64, bool) { return r.LatencyUS.P50, r.Fill == nil && r.Valid > 0 }},
	{"p99_us", func(r *result) (float64, bool) { return r.LatencyUS.P99, r.Fill == nil && r.Valid > 0 }},
	// The tracker's own response time, from its histogram (-metrics):
	// herald_request_duration_seconds for herald.
	{"service_p50_us", func(r *result) (float64, bool) {
		return serviceOf(r, func(s *serviceUS) float64 { return s.P50 })
	}},
	{"service_p99_us", func(r *result) (float64, bool) {
		return serviceOf(r, func(s *serviceUS) float64 { return s.P99 })
	}},
	// herald's own service time (herald_request_service_seconds): from
	// the read of a request, the wait in the socket left out.
	{"service_time_p50_us", func(r *result) (float64, bool) {
		return serviceTimeOf(r, func(s *serviceUS) float64 { return s.P50 })
	}},
	{"service_time_p99_us", func(r *result) (float64, bool) {
		return serviceTimeOf(r, func(s *serviceUS) float64 { return s.P99 })
	}},
	// Errors are the tracker's; backlog (open loop: requests the generator
	// was too late to send) is the generator's, so it is apart.
	{"error_share", func(r *result) (float64, bool) {
		var errs uint64
		for kind, n := range r.Errors {
			if kind != errBacklog.String() {
				errs += n
			}
		}
		if r.Valid+errs == 0 {
			return 0, false
		}
		return float64(errs) / float64(r.Valid+errs), true
	}},
	{"backlog_share", func(r *result) (float64, bool) {
		if r.Rate == 0 || r.Valid == 0 {
			return 0, false
		}
		var total uint64
		for _, n := range r.Errors {
			total += n
		}
		return float64(r.Errors[errBacklog.String()]) / float64(r.Valid+total), true
	}},
	{"rss_bytes_per_peer", func(r *result) (float64, bool) {
		if r.Fill == nil || r.Fill.RSSAfter == 0 {
			return 0, false
		}
		return r.Fill.RSSPerPeer, true
	}},
	{"held_share", func(r *result) (float64, bool) {
		if r.Fill == nil || r.Fill.Peers == 0 {
			return 0, false
		}
		return float64(r.Fill.Held) / float64(r.Fill.Peers), true
	}},
	// After -steady: the same peers re-announced for a peer timeout.
	{"rss_bytes_per_peer_steady", func(r *result) (float64, bool) {
		if r.Fill == nil || r.Fill.Steady == nil || r.Fill.Steady.RSSAfter == 0 {
			return 0, false
		}
		return r.Fill.Steady.RSSPerPeer, true
	}},
	{"held_share_steady", func(r *result) (float64, bool) {
		if r.Fill == nil || r.Fill.Steady == nil || r.Fill.Peers == 0 {
			return 0, false
		}
		return float64(r.Fill.Steady.Held) / float64(r.Fill.Peers), true
	}},
}

func serviceOf(r *result, get func(*serviceUS) float64) (float64, bool) {
	return quantileOf(r.ServiceUS, get)
}

func serviceTimeOf(r *result, get func(*serviceUS) float64) (float64, bool) {
	return quantileOf(r.ServiceTimeUS, get)
}

func quantileOf(s *serviceUS, get func(*serviceUS) float64) (float64, bool) {
	if s == nil || s.Count == 0 {
		return 0, false
	}
	return get(s), true
}

// series are one (workload, tracker, metric)'s values over rounds.
type seriesKey struct{ workload, tracker, metric string }

type summary struct {
	order  []seriesKey
	values map[seriesKey][]float64
}

func readResults(r io.Reader, s *summary) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue // the human-readable lines
		}
		var res result
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return fmt.Errorf("summarize: %w", err)
		}
		for _, m := range metrics {
			v, ok := m.get(&res)
			if !ok {
				continue
			}
			k := seriesKey{res.Workload, res.Tracker, m.name}
			if _, seen := s.values[k]; !seen {
				s.order = append(s.order, k)
			}
			s.values[k] = append(s.values[k], v)
		}
	}
	return sc.Err()
}

// aboveFloor adds cpu_us_above_floor to every tracker's workload that the
// floor ran too: what the tracker costs beyond answering each request at
// all (one read, one reply, one wake-up), the part a tracker's design
// decides. Ratios of it compare what two trackers add, where ratios of
// the whole figure shrink toward 1 as the machine's system calls and
// wake-ups get dearer.
func (s *summary) aboveFloor(floor string) {
	const metric = "cpu_us_above_floor"
	for _, k := range slices.Clone(s.order) {
		if k.metric != "cpu_us_per_valid" || k.tracker == floor {
			continue
		}
		base := s.values[seriesKey{k.workload, floor, k.metric}]
		if len(base) == 0 {
			continue
		}
		m := median(base)
		above := seriesKey{k.workload, k.tracker, metric}
		if _, seen := s.values[above]; !seen {
			s.order = append(s.order, above)
		}
		for _, v := range s.values[k] {
			s.values[above] = append(s.values[above], v-m)
		}
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func runSummarize(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("summarize", flag.ContinueOnError)
	get := fs.String("get", "", "print only the median of `WORKLOAD/TRACKER/METRIC`")
	against := fs.String("vs", "opentracker", "comma-separated `TRACKERS`: each row also shows its median divided by each one's median")
	floor := fs.String("floor", "", "the `TRACKER` that answers and tracks nothing: each other tracker also gets cpu_us_above_floor, its CPU per valid response less the floor's median in the same workload")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := &summary{values: map[seriesKey][]float64{}}
	if fs.NArg() == 0 {
		if err := readResults(os.Stdin, s); err != nil {
			return err
		}
	}
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("summarize: %w", err)
		}
		err = readResults(f, s)
		f.Close()
		if err != nil {
			return err
		}
	}
	if *floor != "" {
		s.aboveFloor(*floor)
	}
	if *get != "" {
		parts := strings.Split(*get, "/")
		if len(parts) != 3 {
			return fmt.Errorf("-get %q: want WORKLOAD/TRACKER/METRIC", *get)
		}
		v := s.values[seriesKey{parts[0], parts[1], parts[2]}]
		if len(v) == 0 {
			return fmt.Errorf("-get %q: no such figures", *get)
		}
		_, err := fmt.Fprintf(out, "%.0f\n", median(v))
		return err
	}
	var vs []string
	for b := range strings.SplitSeq(*against, ",") {
		if b = strings.TrimSpace(b); b != "" {
			vs = append(vs, b)
		}
	}
	w := bufio.NewWriter(out)
	fmt.Fprint(w, "| workload | metric | tracker | rounds | median | min | max |")
	for _, b := range vs {
		fmt.Fprintf(w, " ÷ %s |", b)
	}
	fmt.Fprint(w, "\n|---|---|---|---|---|---|---|")
	fmt.Fprint(w, strings.Repeat("---|", len(vs)))
	fmt.Fprintln(w)
	printed := map[seriesKey]bool{}
	for _, k := range s.order {
		if printed[k] {
			continue
		}
		// Print each (workload, metric) as a group: every tracker, each
		// with the ratio of its median to each -vs tracker's median.
		for _, k2 := range s.order {
			if k2.workload != k.workload || k2.metric != k.metric || printed[k2] {
				continue
			}
			printed[k2] = true
			v := s.values[k2]
			fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s | %s |", k2.workload, k2.metric, k2.tracker, len(v),
				formatFigure(median(v)), formatFigure(slices.Min(v)), formatFigure(slices.Max(v)))
			for _, b := range vs {
				r := ""
				if vb := s.values[seriesKey{k2.workload, b, k2.metric}]; b != k2.tracker && len(vb) > 0 && median(vb) != 0 {
					r = fmt.Sprintf("%.3f", median(v)/median(vb))
				}
				fmt.Fprintf(w, " %s |", r)
			}
			fmt.Fprintln(w)
		}
	}
	return w.Flush()
}

func formatFigure(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}
