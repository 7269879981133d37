// Package stats is herald's observability: opentracker's /stats page,
// Prometheus metrics and a live dashboard, all read from one Snapshot of
// the store and the counters.Set every frontend counts into. Nothing here
// runs per tracker request: the frontends count and time requests with
// atomic adds into the Set's per-processor shards, and the monitor sums
// those when asked. stats imports no frontend.
//
// # Wiring
//
// cmd/herald makes one counters.Set, builds a Monitor over the store and
// the Set before the frontends, gives every frontend the Set, hands the
// HTTP frontend Monitor.Serve (or Handler) for its stats path,
// MetricsPath and DashboardPath with everything under it, and starts Run
// for the dashboard's sampler. The frontend resolves the client address
// (X-Forwarded-For from trusted proxies) and the monitor checks it.
//
// # Access
//
// Only clients in Config.Nets (opentracker's access.stats and -A) are
// served, on every path including /metrics; everyone else gets 403, as
// opentracker built with WANT_RESTRICT_STATS (Debian's build).
//
// # /stats
//
// GET /<stats path>?mode=M. An info_hash parameter is a 400 (clients that
// were given the stats URL as an announce URL); an unknown mode is a 400
// naming the modes. The MRTG modes answer four lines, the last without a
// newline: value, value, "<s> seconds (<h> hours)", description.
//
//	peer (default)  peers, seeds; line 3 "opentracker serving N torrents", line 4 "opentracker"
//	torr            torrents, 0; same lines 3 and 4 as peer
//	conn            HTTP requests + UDP datagrams + WebSocket messages,
//	                announces (all three) + UDP connects
//	udp4            UDP datagrams, UDP announces + connects (both families)
//	tcp4            HTTP requests, HTTP announces (both families)
//	scrp            HTTP scrapes, UDP scrapes
//	fscr            full scrapes × 1000, 0 (bytes are not counted yet)
//	completed       completed counts of the torrents in the store, 0
//	top10, top100   "Top N torrents by peers:" then "\t<count>\t<HEX>" rows;
//	                the same by seeds and by leechers (opentracker HEAD)
//	everything      opentracker's <stats> XML, then herald's <herald>
//	                element: per protocol (udp, http, ws) its requests by
//	                action and outcome and errors by reason (those not 0),
//	                its connection, relay and swarm counts
//	version         the version string and a newline
//	renew           45 lines "MM count": re-announces by the whole minutes
//	                since the peer's previous announce, 00 to 44 (older
//	                ones in 44), as the store's age ticks measure them
//	busy            herald's: HTTP and UDP requests per second over the last
//	                ten dashboard samples (opentracker always answers 500)
//
// Descriptions keep opentracker's wording, "opentracker" included, since
// operators' scripts grep them; herald's name is in version, everything's
// <version> and busy. Differences a script could notice: opentracker's TCP
// "connections" are accepted connections and herald's are HTTP requests
// (opentracker serves one request per connection, so the two agree for its
// clients); completed counts what the torrents in the store recorded rather
// than events since start; everything has no <mutex_stall> (herald takes
// no global lock) and <livesync> is 0.
//
// # Metrics
//
// Every frontend counts into one counters.Set, and the metrics are loops
// over its enums: herald_requests_total{protocol,action,outcome} (protocol
// udp, http or ws; outcome ok, failure, rate_limited, error or dropped),
// herald_errors_total{protocol,reason} (why: every tracker.Reason by its
// label, the same for each protocol, such as not_allowed, rate_limited,
// bad_connection_id; then the frontends' own, such as not_found, dropped,
// send_failed),
// herald_request_duration_seconds{protocol} (from a request's arrival, for
// UDP the kernel's receive time of the datagram, to the start of the write
// of its reply, with buckets every 25 to 50 µs between 25 and 150 µs: the
// response time), herald_request_service_seconds{protocol} (the service
// time, same buckets: from when herald had read the request, for UDP the
// end of the recvmmsg of its batch, for HTTP on the event loop the parse
// of its head, to the same end, so the wait in the socket is left out;
// HTTP through net/http and WebSocket observe the same value in both), and
// per protocol that keeps
// connections (http, ws) herald_<protocol>_connections,
// herald_<protocol>_connections_limit,
// herald_<protocol>_connections_accepted_total and
// herald_<protocol>_connections_refused_total; the WebSocket tracker adds
// herald_ws_offers_relayed_total, herald_ws_answers_relayed_total,
// herald_ws_slow_readers_closed_total,
// herald_ws_torrents, herald_ws_peers and their _limit gauges. From the
// store: herald_store_refusals_total{reason} (torrent_limit, peer_limit),
// herald_torrents, herald_peers{family,role}, herald_torrent_downloads;
// herald_stats_requests_total{outcome}; the configured limits
// herald_torrents_limit, herald_peers_limit,
// herald_client_rate_limit_per_second and herald_client_rate_limit_burst.
// Each limit is absent while it is off. The Go runtime and process
// collectors come too. All are built from a Snapshot at scrape time.
//
// # Dashboard
//
// GET /dashboard is a page drawing uPlot charts (vendored in web/, see
// web/README.md), one sample a second: requests and errors per second by
// protocol (HTTP, UDP, WebSocket); response times p50 and p99 by protocol,
// estimated from herald_request_duration_seconds's buckets over each
// sample's second; service times p99 by protocol, from
// herald_request_service_seconds's the same way; errors per second by herald_errors_total reason; open
// connections; the use of every limit that is on (tracker.max_torrents,
// tracker.max_peers, the connection limits, the WebSocket tracker's own
// torrents and peers) in percent; peers, seeders and leechers (the store's
// running totals, fresh at each sample) and torrents; memory (resident
// set, Go heap, and what is resident outside the Go runtime: the store's
// off-heap tables and arenas) and CPU; the age of the last snapshot save;
// and a table of the busiest torrents (a walk of the store, every
// Config.SlowEvery). It polls /dashboard/data, which serves the sampler's
// ring of recent samples; the ring's size is fixed by Config.History.
package stats
