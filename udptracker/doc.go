// Package udptracker is herald's UDP tracker frontend: BEP 15 (the UDP
// Tracker Protocol: connect, announce, scrape, error) with BEP 41's
// announce options, over IPv4 and IPv6.
//
// # Request path
//
// Four files take a datagram to its reply. server.go runs one reader
// goroutine per socket (Config.Sockets SO_REUSEPORT sockets on one
// address, GOMAXPROCS by default), which sleeps in a blocking recvmmsg
// outside Go's netpoller and wakes with up to 64 datagrams
// (batch_linux.go), answers each in handler.go and sends the replies with
// one sendmmsg. handler.go checks the header and the
// connection id (connid.go) before it parses the body (announce.go,
// scrape.go, options.go); it then hands the request to the tracker core
// (tracker/tracker.go: access list, rate limit, numwant, interval, then
// swarm.Store.Announce or Scrape) and appends the reply (the Append
// functions beside each Parse), or the refusal the core returns as an
// error packet with the core's text. Every buffer belongs to its reader
// and is reused: the path allocates nothing per request
// (TestServeAllocatesNothing, TestSocketPathAllocatesNothing). There is
// no goroutine per packet and no queue between reading and the store.
//
// One socket bound to [::] serves both families: IPv4 clients arrive as
// mapped addresses and are unmapped at once. An IPv4 client gets 6-byte
// peers and an IPv6 client 18-byte peers, each only of its own family (the
// store is asked for the requester's family alone); the seeder and leecher
// counts cover both. On a wildcard address each reply leaves from the
// address its request was sent to (IPV6_PKTINFO, which Linux also reports
// and honours for IPv4 on a dual-stack socket; IP_PKTINFO on an IPv4
// socket), so a multi-homed tracker's replies are not dropped by clients.
//
// # Connection ids
//
// A connection id is a 62-bit SipHash-2-4 MAC of the client's address
// (not its port: libtorrent announces from several sockets with one id) and
// one-minute time slot, plus two bits naming the slot's parity and the
// key's generation: checking one costs one MAC, keeps no state per client
// and compares in constant time. An id is valid in the slot it was issued
// and the next (one to two minutes). The key is replaced every
// Config.KeyRotation (default 1h); ids under the previous key stay valid.
// Keys are derived from Config.ConnIDSecret and the generation number, so
// a herald restarted with the secret its snapshot kept accepts the ids
// issued before the restart.
//
// # What each malformed request gets
//
// Silence is the answer wherever a reply could serve as amplification or
// start a loop; an error packet (action 3) wherever the client can use it.
//
//	Request                                          Answer
//	shorter than 16 bytes (a runt)                   dropped: no transaction id to answer
//	connect (action 0) without the protocol id       dropped: not BEP 15 traffic
//	action other than 0, 1, 2 (3 and up)             dropped, so that trackers cannot keep
//	                                                 each other answering (error texts are
//	                                                 ASCII, which never reads as action 0-2)
//	announce or scrape with a wrong or expired id    error "connection id mismatch or expired",
//	                                                 cut so the reply is no longer than the
//	                                                 request: the source is not yet proven
//	announce shorter than 98 bytes                   error "announce shorter than 98 bytes"
//	announce with malformed BEP 41 options           answered; URLData holds the options
//	                                                 before the bad one
//	announce of a torrent the access list refuses    error "Requested download is not
//	                                                 authorized for use with this tracker."
//	connect over tracker.udp_connect_rate (all       dropped: its source is unproven, so it
//	clients together)                                never charges a client's rate limit
//	announce or scrape over the rate limit           error with the tracker's text
//	announce the store refuses (limits, address)     error with the tracker's text
//	numwant 0 or negative (-1 is BEP 15's default)   the tracker's default numwant
//	numwant above the cap                            MaxPeers4 (200) or MaxPeers6 (66) peers,
//	                                                 or the tracker's cap if lower
//	event above 3                                    treated as none
//	announce IP field                                ignored unless tracker.allow_ip_field
//	scrape of a torrent the access list refuses      zeros, as an unknown torrent
//	scrape body not a whole number of hashes         error "scrape is not 16 + 20*n bytes"
//	scrape of more than 74 hashes                    error "too many info hashes (at most 74
//	                                                 per scrape)", before any lookup
//	datagram longer than 2048 bytes                  read cut at 2048 bytes and handled as
//	                                                 such (only BEP 41 options can be that
//	                                                 long; a scrape that long has too many
//	                                                 hashes anyway)
//
// Every request costs bounded work: at most 74 store lookups per scrape,
// one store call per announce, BEP 41 parsing linear in at most 2048
// bytes. Each outcome is counted (Config.Counters); none is logged per
// packet.
package udptracker
