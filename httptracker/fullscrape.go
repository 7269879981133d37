package httptracker

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"herald/access"
	"herald/counters"
	"herald/swarm"
	"herald/tracker"
)

// A full scrape ("GET /scrape" with no query) lists every torrent the
// tracker serves in one bencoded files dictionary, as opentracker does.
//
// BEP 3 wants the dictionary's keys sorted; Store.Range hands torrents out
// in info hash order, copying one shard at a time under its lock and calling
// back with no lock held, so the reply streams straight from it: memory stays
// at one shard's copy, and a slow client never stalls announces. The reply
// is chunked, and gzip-compressed when the client's Accept-Encoding allows it.

const (
	// fullScrapeChunk is the size of the chunks a full scrape is sent in.
	fullScrapeChunk = 64 << 10
	// fullScrapeRetryAfter is the Retry-After, in seconds, of a full scrape
	// refused because MaxFullScrapes are running.
	fullScrapeRetryAfter = "30"
)

var (
	gzipEncoding   = []string{"gzip"}
	acceptEncoding = []string{"Accept-Encoding"}
)

func (h *Handler) fullScrape(w http.ResponseWriter, r *http.Request, key *access.Key) {
	ce := tracker.UnknownClient.Err()
	if addr, ok := h.ClientAddr(r); ok {
		ce = h.tracker.AdmitFullScrape(addr, key, time.Now())
	}
	if ce != nil {
		tracker.Count(h.counts, counters.HTTP, counters.FullScrape, ce.Reason)
		writeBody(w, textPlain, appendFailure(nil, ce.Text))
		return
	}
	select {
	case h.fullScrapeSlots <- struct{}{}:
		defer func() { <-h.fullScrapeSlots }()
	default:
		h.counts.Request(counters.HTTP, counters.FullScrape, counters.Failure)
		h.counts.Fault(counters.HTTP, counters.FullScrapeBusy)
		w.Header()["Retry-After"] = []string{fullScrapeRetryAfter}
		writeText(w, http.StatusServiceUnavailable, "too many full scrapes running, retry later")
		return
	}

	ctx := r.Context()
	hdr := w.Header()
	hdr["Content-Type"] = octetStream
	hdr["Vary"] = acceptEncoding
	paced := &pacedWriter{w: w, rc: http.NewResponseController(w), end: time.Now().Add(h.cfg.WriteTimeout)}
	var out io.Writer = paced
	var gz *gzip.Writer
	if acceptsGzip(r.Header.Values("Accept-Encoding")) {
		hdr["Content-Encoding"] = gzipEncoding
		gz = h.gzipWriter(paced)
		defer h.gzipWriters.Put(gz)
		out = gz
	}
	err := h.writeFullScrape(ctx, bufio.NewWriterSize(out, fullScrapeChunk))
	if err == nil && gz != nil {
		err = gz.Close()
	}
	if err != nil {
		h.counts.Request(counters.HTTP, counters.FullScrape, counters.Error)
		h.counts.Fault(counters.HTTP, counters.FullScrapeCut)
		return
	}
	h.counts.Request(counters.HTTP, counters.FullScrape, counters.OK)
}

// fullScrapeStall is how long one write of a full scrape (at most a
// fullScrapeChunk) may take: a client reading slower than 64 KiB per 30 s
// (about 2 KiB/s) is cut off, so that two slow readers cannot hold both
// full-scrape slots for the whole WriteTimeout (issue 14 item 3).
var fullScrapeStall = 30 * time.Second

// pacedWriter gives each write to the client fullScrapeStall, within the
// reply's overall deadline end.
type pacedWriter struct {
	w   io.Writer
	rc  *http.ResponseController
	end time.Time
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	deadline := time.Now().Add(fullScrapeStall)
	if deadline.After(p.end) {
		deadline = p.end
	}
	// A writer without deadlines (a Handler mounted elsewhere, a test
	// recorder) is written unpaced.
	if err := p.rc.SetWriteDeadline(deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	return p.w.Write(b)
}

// writeFullScrape writes the reply body from the store, the torrents the
// access list allows; it stops early when
// ctx is done (the client left or the server is shutting down).
func (h *Handler) writeFullScrape(ctx context.Context, bw *bufio.Writer) error {
	var entry [128]byte
	var err error
	n := 0
	bw.WriteString(scrapeHead)
	h.tracker.Range(func(tc swarm.TorrentCounts) bool {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			err = ctx.Err()
			return false
		}
		_, err = bw.Write(appendScrapeFile(entry[:0], &tc.InfoHash, tc.Counts))
		return err == nil
	})
	if err != nil {
		return err
	}
	bw.WriteString(scrapeTail)
	return bw.Flush()
}

func (h *Handler) gzipWriter(w io.Writer) *gzip.Writer {
	if gz, ok := h.gzipWriters.Get().(*gzip.Writer); ok {
		gz.Reset(w)
		return gz
	}
	return gzip.NewWriter(w)
}

// acceptsGzip reports whether Accept-Encoding header values allow gzip
// (RFC 9110 section 12.5.3): "gzip" or "x-gzip" with a non-zero q, or, when
// neither is named, "*" with a non-zero q. No header means no compression.
func acceptsGzip(values []string) bool {
	gzipQ, starQ := -1.0, -1.0
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			coding, params, _ := strings.Cut(item, ";")
			q := qValue(params)
			switch strings.ToLower(strings.TrimSpace(coding)) {
			case "gzip", "x-gzip":
				gzipQ = max(gzipQ, q)
			case "*":
				starQ = max(starQ, q)
			}
		}
	}
	if gzipQ >= 0 {
		return gzipQ > 0
	}
	return starQ > 0
}

// qValue returns the weight in an Accept-Encoding item's parameters: 1
// when there is none, 0 when it is malformed.
func qValue(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		name, value, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil || q < 0 || q > 1 {
			return 0
		}
		return q
	}
	return 1
}
