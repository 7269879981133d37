package stats

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"herald/counters"
)

// web holds the dashboard page and the vendored uPlot build (see
// web/README.md for its version and licence).
//
//go:embed web/dashboard.html web/dashboard.js web/uPlot.iife.min.js web/uPlot.min.css
var web embed.FS

// Paths the handler answers besides the stats path.
const (
	MetricsPath   = "/metrics"
	DashboardPath = "/dashboard" // and everything under /dashboard/
)

// Handler returns the handler for the stats path, MetricsPath and
// DashboardPath (and below it). clientAddr gives the client's address as
// the frontend trusts it (after X-Forwarded-For from trusted proxies);
// only clients in Config.Nets are served, everyone else gets 403.
func (m *Monitor) Handler(clientAddr func(*http.Request) netip.Addr) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.Serve(w, r, clientAddr(r))
	})
}

// Serve answers a request for the stats path, MetricsPath or DashboardPath
// from client, the address the frontend resolved: a frontend that already
// knows it calls Serve instead of going through Handler.
func (m *Monitor) Serve(w http.ResponseWriter, r *http.Request, client netip.Addr) {
	m.statsRequests.Add(1)
	if !m.allowed(client) {
		m.statsDenied.Add(1)
		writeText(w, http.StatusForbidden, "access denied: this network may not read tracker statistics\n")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeText(w, http.StatusMethodNotAllowed, "only GET is served\n")
		return
	}
	path := strings.TrimLeft(r.URL.Path, "/")
	switch {
	case path == m.cfg.StatsPath:
		m.serveStats(w, r)
	case "/"+path == MetricsPath:
		m.metrics.ServeHTTP(w, r)
	case "/"+path == DashboardPath:
		serveAsset(w, "web/dashboard.html", "text/html; charset=utf-8")
	case "/"+path == DashboardPath+"/data":
		m.serveDashboardData(w)
	case "/"+path == DashboardPath+"/":
		// The page loads its assets relative to /dashboard.
		http.Redirect(w, r, "../dashboard", http.StatusMovedPermanently)
	case strings.HasPrefix("/"+path, DashboardPath+"/"):
		m.serveDashboardAsset(w, strings.TrimPrefix("/"+path, DashboardPath+"/"))
	default:
		writeText(w, http.StatusNotFound, "not found\n")
	}
}

func (m *Monitor) allowed(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range m.cfg.Nets {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func (m *Monitor) serveStats(w http.ResponseWriter, r *http.Request) {
	mode, err := ParseQuery(r.URL.RawQuery)
	switch {
	case errors.Is(err, ErrInfoHash):
		writeText(w, http.StatusBadRequest, "info_hash given: this is the stats page, not an announce URL\n")
		return
	case err != nil:
		writeText(w, http.StatusBadRequest, err.Error()+"; modes: "+ModeList()+"\n")
		return
	}
	switch mode {
	case ModeTPBS:
		m.serveTPBS(w, ParseFormat(r.URL.RawQuery))
		return
	case ModeStatedump:
		m.serveStatedump(w)
		return
	case ModeSubnets:
		m.serveSubnets(w)
		return
	}
	contentType := "text/plain; charset=utf-8"
	var body []byte
	switch mode {
	case ModePeer, ModeCompleted, ModeEverything, ModeHTTPErrors:
		s := m.Snapshot()
		switch mode {
		case ModePeer:
			body = appendPeers(body, &s)
		case ModeCompleted:
			body = appendCompleted(body, &s)
		case ModeHTTPErrors:
			body = appendHTTPErrors(body, &s)
		default:
			contentType = "text/xml; charset=utf-8"
			renewed := m.store.Renewals()
			body = appendEverything(body, &s, &renewed, m.trackerID, m.cfg.Version)
		}
	case ModeTop10, ModeTop100:
		n := 10
		if mode == ModeTop100 {
			n = 100
		}
		top := m.Top(n)
		body = appendTop(body, n, &top)
	case ModeVersion:
		body = append(append(body, m.cfg.Version...), '\n')
	case ModeRenew:
		renewed := m.store.Renewals()
		body = appendRenew(body, &renewed)
	default:
		s := m.counters(m.now())
		switch mode {
		case ModeConn:
			body = appendConn(body, &s)
		case ModeScrape:
			body = appendScrape(body, &s)
		case ModeUDP4:
			body = appendUDP4(body, &s)
		case ModeTCP4:
			body = appendTCP4(body, &s)
		case ModeTorrents:
			body = appendTorrents(body, &s)
		case ModeFullScrape:
			body = appendFullScrape(body, &s)
		case ModeBusy:
			httpRate, udpRate, ok := m.history.recentRates()
			if !ok {
				secs := max(uptimeSeconds(s.Uptime), 1)
				httpRate, udpRate = s.Requests(counters.HTTP)/secs, s.Requests(counters.UDP)/secs
			}
			body = appendBusy(body, &s, httpRate, udpRate)
		}
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

func (m *Monitor) serveDashboardData(w http.ResponseWriter) {
	body, err := json.Marshal(m.dashboardData(m.now()))
	if err != nil {
		writeText(w, http.StatusInternalServerError, "dashboard data: "+err.Error()+"\n")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.Write(body)
}

var assetTypes = map[string]string{
	"dashboard.js":      "text/javascript; charset=utf-8",
	"uPlot.iife.min.js": "text/javascript; charset=utf-8",
	"uPlot.min.css":     "text/css; charset=utf-8",
}

func (m *Monitor) serveDashboardAsset(w http.ResponseWriter, name string) {
	contentType, ok := assetTypes[name]
	if !ok {
		writeText(w, http.StatusNotFound, "not found\n")
		return
	}
	serveAsset(w, "web/"+name, contentType)
}

func serveAsset(w http.ResponseWriter, path, contentType string) {
	body, err := web.ReadFile(path)
	if err != nil { // the embed list above names every asset
		writeText(w, http.StatusInternalServerError, "missing asset "+path+"\n")
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	// The page loads only its own scripts and styles and talks only to its
	// own origin.
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
	w.Write(body)
}

func writeText(w http.ResponseWriter, status int, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(text))
}

// slogPrinter routes promhttp's errors to the monitor's logger.
type slogPrinter struct{ m *Monitor }

func (p slogPrinter) Println(v ...any) {
	p.m.cfg.Logger.Error("stats: metrics", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}
