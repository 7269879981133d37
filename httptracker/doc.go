// Package httptracker is herald's HTTP tracker frontend: BEP 3 announces
// with BEP 23 compact and BEP 7 IPv6 peers, BEP 48 scrapes, and
// opentracker's full scrape, with HTTP/1.1 keep-alive.
//
// # Request path
//
// On Linux, each core runs an event loop (loop_linux.go, epoll) on its own
// SO_REUSEPORT socket (server_linux.go):
// it accepts, reads the request head into a reused buffer and, when
// head.go recognises a plain GET of an announce or scrape (what nearly
// every client sends), answers it itself: accept, read, send, close, and
// the epoll_wait the loop's thread sleeps in between connections (a
// blocking system call, outside the runtime's netpoller), no goroutine
// and no allocation per connection. Every other
// request (stats, full scrape, WebSocket upgrades, unusual but legal HTTP)
// is handed with the bytes read so far to a net/http server, whose
// behaviour and errors it then gets. The loop reaches the tracker through
// one entry point (fastpath_linux.go). Elsewhere net/http answers every
// request (server_other.go). Both paths route with the same rules
// (handler.go) and answer through the same code: query.go decodes the
// parameters from the raw query into fixed arrays, handler.go hands the
// announce to the tracker core (tracker/tracker.go: access list, rate
// limit, numwant, stated addresses, intervals), whose call to
// swarm.Store.Announce updates the swarm and picks peers under one shard
// lock, and reply.go appends the bencoded reply, or the core's refusal as
// a failure reason, into a reused buffer. From socket to reply a reader
// opens loop.go, head.go, handler.go, query.go, tracker/tracker.go,
// swarm/store.go and reply.go.
//
// # Routing (as opentracker's ot_http.c)
//
// Only GET is served; other methods get 405 with "Allow: GET" (opentracker
// answers 400). A first path segment that is a key (access.KeyFromPath: 32
// characters of [A-Za-z0-9], /KEY/announce) is taken off and handed to the
// tracker with the request, which refuses a missing or unknown one when
// keys are on and ignores it when they are off. Leading slashes of the
// rest are skipped, then:
//
//	""                        302 to Config.RedirectURL, or 404 when unset
//	starts with "a"           announce: /announce, /announce.php, /abc/announce
//	"scrape", no query at all full scrape ("/scrape?" is a scrape of no hashes)
//	starts with "sc"          scrape: /scrape, /scrape.php
//	anything else             404
//
// A request line with a stray space ("GET /announce ?info_hash=…"), which
// opentracker tolerates, goes to net/http, which rejects it with 400. A request line plus headers longer than
// Config.MaxHeaderBytes (so also an over-long URL) gets net/http's 431
// Request Header Fields Too Large, not 414; net/http reads up to 4 KiB
// past the limit before it notices.
//
// # Parameters
//
// info_hash, peer_id, port, uploaded, downloaded, left, event, numwant,
// compact, key, ip, ipv4 and ipv6 are read; no_peer_id, trackerid and
// anything else are skipped (peer ids are never sent, so no_peer_id is
// always honoured). ip (BEP 3: the address to list instead of the
// connection's) and ipv4/ipv6 (BEP 7: the client's address in the other
// family, listed as a second peer) are honoured only with
// tracker.allow_ip_field; an unreadable one is ignored. Values are percent-decoded; '+' stays '+'. A raw byte of
// 0x80 or above or a bad %xx escape in a parameter the tracker reads is a
// 400, as in opentracker.
//
//   - info_hash: required, exactly 20 bytes, once per announce.
//   - peer_id: optional, but exactly 20 bytes when present.
//   - port: required, 1 to 65535. opentracker stores port 0 when it is
//     missing; herald refuses, since nobody can connect to port 0.
//   - left: 0 makes a seeder; any other number, a missing left, or one
//     that is not a non-negative number makes a leecher. (opentracker
//     counts a non-number as a seeder; a client that cannot say what it
//     lacks, such as a magnet link without metadata, is no seeder.)
//   - event: started, completed (counts a download once per peer when it
//     is a seeder), stopped (removes the peer; the reply has counts and an
//     empty "peers"); paused (BEP 21) and anything else is a plain
//     announce (tracker.ParseEvent has the names).
//   - numwant: the tracker's default (50) when absent or negative, capped
//     at the tracker's max (200); not a number is a failure.
//   - compact: "0" asks for the dictionary model (a list of "ip"/"port"
//     dictionaries), which opentracker refuses with 400; anything else is
//     compact.
//   - ip, ipv4, ipv6: addresses the client states itself, used only with
//     Config.AllowClientIP: ip= (BEP 3) replaces the connection's address;
//     ipv4= and ipv6= (BEP 7, "addr" or "addr:port") register the client's
//     address in the other family as a second peer. An unreadable or
//     unspecified address, or one of the wrong family, is ignored.
//
// # Replies
//
// Keys are sorted: complete, downloaded, incomplete, interval, min
// interval, peers, peers6. "peers" is always there, even empty (opentracker
// drops it, and some clients fail); "peers6" only when IPv6 peers were
// picked. Each reply's interval is the tracker's interval ± its jitter.
// The announcer never gets itself back.
//
// Scrapes answer up to Config.MaxScrapeHashes info_hash parameters (extra
// ones are dropped, as opentracker) with d5:filesd…ee, one entry per
// known, allowed torrent in hash order; unknown hashes are left out, as
// opentracker does.
//
// A full scrape lists every allowed torrent, sorted by hash, chunked, and
// gzip-compressed when Accept-Encoding allows gzip (parsed properly: q=0
// refuses it; opentracker only searches the request for "gzip"). It goes
// through the tracker's rate limit like any request, and then its own
// (tracker.Config.AdmitFullScrape: herald gives a client one per announce
// interval, loopback exempt); over either it gets the rate-limit failure.
// At most Config.MaxFullScrapes run at once; more get 503 with
// Retry-After. A client that reads slower than 64 KiB per 30 s is cut off,
// so that slow readers cannot hold the slots for Config.WriteTimeout. The
// store hands torrents out in hash order one shard at a time, so a full
// scrape streams with one shard's copy in memory (fullscrape.go).
//
// # Errors
//
// A request that decodes but cannot be served is answered with HTTP 200
// and a bencoded "failure reason": the tracker's text for the refusal
// (tracker/reason.go, the same over UDP and WebSocket), or for a query
// missing what an announce needs, errors.go's (opentracker's wording where
// it has one). A query that does not decode gets 400, an unknown path
// 404, and the server keeps serving either way.
package httptracker
