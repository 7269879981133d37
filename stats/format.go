package stats

import (
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"herald/counters"
	"herald/swarm"
	"herald/tracker"
)

// The MRTG format is opentracker's: two values, the uptime, and a
// description, with no newline after the last line. MRTG and operators'
// scripts parse the values by line and some grep the descriptions, so the
// descriptions keep opentracker's words (including "udp4"/"tcp4", which
// count both families, and the name "opentracker"). Herald's own name
// appears only where opentracker reports its version (mode=version and
// <version> in mode=everything) and in mode=busy, which is herald's.

// appendMRTG appends the four MRTG lines; desc is the fourth.
func appendMRTG(dst []byte, a, b uint64, uptime time.Duration, desc string) []byte {
	secs := uptimeSeconds(uptime)
	dst = strconv.AppendUint(dst, a, 10)
	dst = append(dst, '\n')
	dst = strconv.AppendUint(dst, b, 10)
	dst = append(dst, '\n')
	dst = strconv.AppendUint(dst, secs, 10)
	dst = append(dst, " seconds ("...)
	dst = strconv.AppendUint(dst, secs/3600, 10)
	dst = append(dst, " hours)\n"...)
	return append(dst, desc...)
}

// appendServing appends opentracker's peer and torr layout, whose third
// line names the torrent count instead of the uptime.
func appendServing(dst []byte, a, b uint64, torrents int) []byte {
	dst = strconv.AppendUint(dst, a, 10)
	dst = append(dst, '\n')
	dst = strconv.AppendUint(dst, b, 10)
	dst = append(dst, "\nopentracker serving "...)
	dst = strconv.AppendInt(dst, int64(torrents), 10)
	return append(dst, " torrents\nopentracker"...)
}

func uptimeSeconds(d time.Duration) uint64 { return uint64(max(d, 0) / time.Second) }

// perTime is opentracker's integer rate: events over a period of at least
// one unit.
func perTime(events, units uint64) string {
	return strconv.FormatUint(events/max(units, 1), 10)
}

func appendPeers(dst []byte, s *Snapshot) []byte {
	t := &s.Totals
	seeders := uint64(t.Seeders4 + t.Seeders6)
	return appendServing(dst, seeders+uint64(t.Leechers4+t.Leechers6), seeders, t.Torrents)
}

func appendTorrents(dst []byte, s *Snapshot) []byte {
	return appendServing(dst, uint64(s.Torrents), 0, s.Torrents)
}

// appendConn counts every protocol's requests; success is announces
// served plus UDP connects, as opentracker counts them.
func appendConn(dst []byte, s *Snapshot) []byte {
	secs := uptimeSeconds(s.Uptime)
	accepts := s.Requests(counters.UDP) + s.Requests(counters.HTTP) + s.Requests(counters.WS)
	success := s.served(counters.UDP, counters.Connect)
	for p := range counters.NumProtocols {
		success += s.served(p, counters.Announce)
	}
	return appendMRTG(dst, accepts, success, s.Uptime,
		"opentracker connections, "+perTime(accepts, secs)+" conns/s :: "+perTime(success, secs)+" success/s.")
}

func appendUDP4(dst []byte, s *Snapshot) []byte {
	secs := uptimeSeconds(s.Uptime)
	accepts := s.Requests(counters.UDP)
	success := s.served(counters.UDP, counters.Announce) + s.served(counters.UDP, counters.Connect)
	return appendMRTG(dst, accepts, success, s.Uptime,
		"opentracker udp4 stats, "+perTime(accepts, secs)+" conns/s :: "+perTime(success, secs)+" success/s.")
}

func appendTCP4(dst []byte, s *Snapshot) []byte {
	secs := uptimeSeconds(s.Uptime)
	accepts, announces := s.Requests(counters.HTTP), s.served(counters.HTTP, counters.Announce)
	return appendMRTG(dst, accepts, announces, s.Uptime,
		"opentracker tcp4 stats, "+perTime(accepts, secs)+" conns/s :: "+perTime(announces, secs)+" success/s.")
}

func appendScrape(dst []byte, s *Snapshot) []byte {
	secs := uptimeSeconds(s.Uptime)
	tcp, udp := s.served(counters.HTTP, counters.Scrape), s.served(counters.UDP, counters.Scrape)
	return appendMRTG(dst, tcp, udp, s.Uptime,
		"opentracker scrape stats, "+perTime(tcp+udp, secs)+" scrape/s (tcp and udp)")
}

// appendFullScrape: line 1 is the count times 1000, as opentracker. Line 2
// is opentracker's bytes sent, which the HTTP frontend does not count yet:
// herald reports 0.
func appendFullScrape(dst []byte, s *Snapshot) []byte {
	secs := uptimeSeconds(s.Uptime)
	full := s.served(counters.HTTP, counters.FullScrape)
	return appendMRTG(dst, full*1000, 0, s.Uptime,
		"opentracker full scrape stats, "+perTime(full, secs)+" conns/s :: 0 bytes/s.")
}

// appendCompleted reports the completed counts of the torrents in the
// store; opentracker counts completed events since start instead, which
// herald's frontends do not keep.
func appendCompleted(dst []byte, s *Snapshot) []byte {
	completed := uint64(s.Totals.Completed)
	return appendMRTG(dst, completed, 0, s.Uptime,
		"opentracker, "+perTime(completed, uptimeSeconds(s.Uptime)/3600)+" completed/h.")
}

// appendTop appends opentracker's top10/top100 text: a header per list and
// a tab-indented "count HEX" row per torrent.
func appendTop(dst []byte, n int, top *Top) []byte {
	for _, list := range []struct {
		by   string
		rows []swarm.TorrentCounts
		of   func(swarm.Counts) uint64
	}{
		{"peers", top.ByPeers, func(c swarm.Counts) uint64 { return uint64(c.Seeders) + uint64(c.Leechers) }},
		{"seeds", top.BySeeders, func(c swarm.Counts) uint64 { return uint64(c.Seeders) }},
		{"leechers", top.ByLeechers, func(c swarm.Counts) uint64 { return uint64(c.Leechers) }},
	} {
		dst = append(dst, "Top "...)
		dst = strconv.AppendInt(dst, int64(n), 10)
		dst = append(dst, " torrents by "...)
		dst = append(dst, list.by...)
		dst = append(dst, ":\n"...)
		for i := range list.rows {
			dst = append(dst, '\t')
			dst = strconv.AppendUint(dst, list.of(list.rows[i].Counts), 10)
			dst = append(dst, '\t')
			dst = appendHexUpper(dst, list.rows[i].InfoHash[:])
			dst = append(dst, '\n')
		}
	}
	return dst
}

func appendHexUpper(dst, b []byte) []byte {
	n := len(dst)
	dst = hex.AppendEncode(dst, b)
	upper := dst[n:]
	for i, c := range upper {
		if c >= 'a' {
			upper[i] = c - 'a' + 'A'
		}
	}
	return dst
}

// httpErrorNames are opentracker's <http_error> codes in mode=everything,
// in its order; herald fills the ones its frontend counts.
var httpErrorNames = [...]string{
	"302 Redirect", "400 Parse Error", "400 Invalid Parameter", "400 Invalid Parameter (compact=0)",
	"400 Not Modest", "402 Payment Required", "403 Access Denied", "404 Not found", "500 Internal Server Error",
}

// httpErrorCounts are the counts of httpErrorNames.
func httpErrorCounts(s *Snapshot) [len(httpErrorNames)]uint64 {
	faults := &s.Counters.Faults[counters.HTTP]
	return [len(httpErrorNames)]uint64{
		0: s.served(counters.HTTP, counters.Redirect),
		1: faults[counters.BadRequest],
		6: s.StatsDenied,
		7: faults[counters.NotFound],
		8: s.Counters.Refusals[counters.HTTP][tracker.Internal],
	}
}

// httpErrorLabels are mode=herr's line labels, opentracker's, for the
// httpErrorNames they print (opentracker leaves out 400 Not Modest and
// 402).
var httpErrorLabels = [...]struct {
	label string
	index int
}{{"302 RED", 0}, {"400 ...", 1}, {"400 PAR", 2}, {"400 COM", 3}, {"403 IP ", 6}, {"404 INV", 7}, {"500 SRV", 8}}

// appendHTTPErrors appends mode=herr: one "code label count" line per
// HTTP error opentracker counts, in its order.
func appendHTTPErrors(dst []byte, s *Snapshot) []byte {
	counts := httpErrorCounts(s)
	for _, l := range httpErrorLabels {
		dst = append(dst, l.label...)
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, counts[l.index], 10)
		dst = append(dst, '\n')
	}
	return dst
}

// appendRenew appends mode=renew, opentracker's histogram of re-announce
// ages: a "MM count" line for each minute.
func appendRenew(dst []byte, renewed *swarm.Renewals) []byte {
	for minute, n := range renewed {
		dst = appendMinute(dst, minute)
		dst = append(dst, ' ')
		dst = strconv.AppendUint(dst, n, 10)
		dst = append(dst, '\n')
	}
	return dst
}

// appendMinute appends minute as opentracker prints it, "%02i".
func appendMinute(dst []byte, minute int) []byte {
	if minute < 10 {
		dst = append(dst, '0')
	}
	return strconv.AppendInt(dst, int64(minute), 10)
}

// appendEverything appends opentracker's XML document. Herald takes no
// global lock, so <mutex_stall> is left out; livesync is 0 (cluster sync
// is counted in the cluster's own metrics).
// After opentracker's elements comes herald's <herald> element with every
// counter of every protocol, WebSocket included, one <count> per series as
// /metrics has them.
func appendEverything(dst []byte, s *Snapshot, renewed *swarm.Renewals, trackerID uint32, version string) []byte {
	t := &s.Totals
	seeders := uint64(t.Seeders4 + t.Seeders6)
	peers := seeders + uint64(t.Leechers4+t.Leechers6)
	tag := func(indent, name string, v uint64) { dst = appendElement(dst, indent, name, "", v) }
	dst = append(dst, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<stats>\n"...)
	tag("  ", "tracker_id", uint64(trackerID))
	dst = append(dst, "  <version>\n"...)
	dst = appendXMLText(dst, version)
	dst = append(dst, "\n  </version>\n"...)
	tag("  ", "uptime", uptimeSeconds(s.Uptime))
	dst = append(dst, "  <torrents>\n"...)
	tag("    ", "count_mutex", uint64(s.Torrents))
	tag("    ", "count_iterator", uint64(t.Torrents))
	dst = append(dst, "  </torrents>\n  <peers>\n"...)
	tag("    ", "count", peers)
	dst = append(dst, "  </peers>\n  <seeds>\n"...)
	tag("    ", "count", seeders)
	dst = append(dst, "  </seeds>\n  <completed>\n"...)
	tag("    ", "count", uint64(t.Completed))
	dst = append(dst, "  </completed>\n  <connections>\n    <tcp>\n"...)
	tag("      ", "accept", s.Requests(counters.HTTP))
	tag("      ", "announce", s.served(counters.HTTP, counters.Announce))
	tag("      ", "scrape", s.served(counters.HTTP, counters.Scrape))
	dst = append(dst, "    </tcp>\n    <udp>\n"...)
	tag("      ", "overall", s.Requests(counters.UDP))
	tag("      ", "connect", s.served(counters.UDP, counters.Connect))
	tag("      ", "announce", s.served(counters.UDP, counters.Announce))
	tag("      ", "scrape", s.served(counters.UDP, counters.Scrape))
	tag("      ", "missmatch", s.Counters.Refusals[counters.UDP][tracker.BadConnectionID])
	dst = append(dst, "    </udp>\n    <livesync>\n"...)
	tag("      ", "count", 0)
	dst = append(dst, "    </livesync>\n  </connections>\n  <debug>\n    <renew>\n"...)
	for minute, n := range renewed {
		dst = append(dst, "      <count interval=\""...)
		dst = appendMinute(dst, minute)
		dst = append(dst, "\">"...)
		dst = strconv.AppendUint(dst, n, 10)
		dst = append(dst, "</count>\n"...)
	}
	dst = append(dst, "    </renew>\n    <http_error>\n"...)
	counts := httpErrorCounts(s)
	for i, name := range httpErrorNames {
		dst = append(dst, "      <count code=\""...)
		dst = append(dst, name...)
		dst = append(dst, "\">"...)
		dst = strconv.AppendUint(dst, counts[i], 10)
		dst = append(dst, "</count>\n"...)
	}
	dst = append(dst, "    </http_error>\n  </debug>\n"...)
	dst = appendHerald(dst, &s.Counters)
	return append(dst, "</stats>"...)
}

// appendHerald appends the <herald> element of mode=everything: for each
// protocol its requests by action and outcome and its errors by reason,
// the tracker's refusals then the other faults (those not 0), then its
// events and gauges (limits while set) as counters.Events and
// counters.Gauges list them.
func appendHerald(dst []byte, c *counters.Counts) []byte {
	count := func(name, attrs string, v uint64) { dst = appendElement(dst, "      ", name, attrs, v) }
	dst = append(dst, "  <herald>\n"...)
	for p := range counters.NumProtocols {
		dst = append(dst, "    <protocol name=\""...)
		dst = append(dst, p.Label()...)
		dst = append(dst, "\">\n"...)
		for a := range counters.NumActions {
			for o := range counters.NumOutcomes {
				if v := c.Requests[p][a][o]; v > 0 {
					count("requests", ` action="`+a.Label()+`" outcome="`+o.Label()+`"`, v)
				}
			}
		}
		for r := range tracker.NumReasons {
			if v := c.Refusals[p][r]; v > 0 {
				count("errors", ` reason="`+tracker.Reason(r).Label()+`"`, v)
			}
		}
		for f := range counters.NumFaults {
			if v := c.Faults[p][f]; v > 0 {
				count("errors", ` reason="`+f.Label()+`"`, v)
			}
		}
		for _, e := range counters.Events[p] {
			count(e.Label(), "", c.Events[p][e])
		}
		for _, g := range counters.Gauges[p] {
			if v := c.Gauges[p][g]; v > 0 || !g.IsLimit() {
				count(g.Label(), "", uint64(max(v, 0)))
			}
		}
		dst = append(dst, "    </protocol>\n"...)
	}
	return append(dst, "  </herald>\n"...)
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

func appendXMLText(dst []byte, s string) []byte { return append(dst, xmlEscaper.Replace(s)...) }

// appendBusy is herald's answer to mode=busy, which opentracker lists but
// always answers with 500: MRTG lines of HTTP and UDP requests per second
// over the dashboard's last ten samples (since start when the sampler has
// not run), so MRTG can graph load.
func appendBusy(dst []byte, s *Snapshot, httpRate, udpRate uint64) []byte {
	return appendMRTG(dst, httpRate, udpRate, s.Uptime,
		"herald busy, "+strconv.FormatUint(httpRate, 10)+" http req/s :: "+strconv.FormatUint(udpRate, 10)+" udp req/s.")
}

// appendElement appends one indented XML element holding a number, with
// attrs (already escaped, led by a space) in its start tag.
func appendElement(dst []byte, indent, name, attrs string, v uint64) []byte {
	dst = append(dst, indent...)
	dst = append(dst, '<')
	dst = append(dst, name...)
	dst = append(dst, attrs...)
	dst = append(dst, '>')
	dst = strconv.AppendUint(dst, v, 10)
	dst = append(dst, "</"...)
	dst = append(dst, name...)
	return append(dst, ">\n"...)
}
