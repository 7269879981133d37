// Package tracker holds the rules of the tracker that do not depend on the
// protocol a client speaks. The HTTP, UDP and WebSocket frontends parse a
// request, hand it here, and encode what comes back; the access list, the
// rate limit, numwant, intervals, event names and the words of every
// refusal are decided once, in this package, for all three.
//
// # Request path
//
// A frontend parses an announce into an AnnounceRequest (a swarm.Announce
// plus what only the rules read: the address the client states, the
// families and the frontend's own cap on peers) and calls
// Tracker.Announce, which runs Prepare and then swarm.Store.Announce:
//
//	Prepare    the key (access.keys) and the access list (lock-free set
//	           lookups), then the client's rate limit (a hash and a lock):
//	           the cheap checks first, and a refused key or torrent costs
//	           its client no token; then numwant
//	           (default, tracker cap, frontend cap) and the listed address
//	Announce   the store's update and peer pick under one shard lock, the
//	           BEP 7 second address, the per-key accounting (Record, with
//	           keys on) and the reply's jittered intervals
//
// WebSocket peers are connections, not addresses, so the WebSocket
// frontend calls Prepare alone and keeps the peer in its own swarms. A
// scrape asks AdmitScrape (AdmitFullScrape for a full one: the key, then
// the rate limit) and then
// ScrapeCounts per hash, which reads a torrent the access list refuses as
// unknown. A UDP connect never charges a client's rate limit, its address
// being unproven; ConnectWindow (connect.go) bounds connects for all
// clients together instead.
//
// # Refusals
//
// A refusal is a *ClientError: a Reason (a small enum that counters index
// and metrics label) and the text the client reads. The texts live in one
// table (reason.go), so a refusal reads the same over every protocol
// (TestRefusalReadsTheSameOverEveryProtocolIssue16 drives real servers of
// all three); only Malformed carries the frontend's own words, about its
// own syntax. Count (count.go) counts every refusal the same way whatever
// protocol carried it. Any other error is internal: logged (at 1, 2, 4,
// ... occurrences) and answered with Internal's generic text.
package tracker
