// Package wstracker is herald's WebTorrent tracker: the WebSocket protocol
// of the npm bittorrent-tracker server, which browsers use because they
// can speak neither HTTP announces with raw peers nor UDP. The tracker
// never hands out addresses; it relays WebRTC offers and answers between
// the peers of a swarm, who then connect to each other directly.
//
// # Why peers are connections, not swarm.Store entries
//
// swarm.Store keeps a peer as its IP and port, packed, and answers an
// announce with other peers' addresses. A WebTorrent peer has no address
// the tracker could give out: its reachable addresses are ICE candidates
// inside the SDP of its offers, and the tracker's whole job is to write
// those offers to other peers' sockets. So a WebSocket peer is (peer_id,
// connection); it lives exactly as long as the connection (a closed socket
// removes its peers at once, no expiry timer), and swarms.go keeps these
// swarms, sharded by info hash like the store. They follow the same rules
// as HTTP and UDP, decided by the same code (the tracker core,
// Config.Tracker): the access list, the per-address rate limit, numwant,
// the interval with its jitter, event names, and one text per refusal;
// the torrent and peer limits are their own.
//
// # Across a cluster
//
// With Config.Cluster (a cluster.Node, wired by cmd/herald) a swarm spans
// the instances: the handler tells the cluster of every change to its own
// peers, and holds the other instances' peers as members without a
// connection, marked with their node (relay.go). Offers pick among all
// members; an offer for a remote member goes to its instance, which writes
// it to the peer's socket and remembers it there like a local relay, so
// the answer goes back to the offerer's instance. Announce replies and
// scrapes count all members. cluster/webtorrent.go has the protocol.
//
// # Request path
//
// server.go (or any net/http server mounting Handler) reads the upgrade
// request; handler.go upgrades it with github.com/gobwas/ws and starts a
// goroutine for the connection, which parks in a read of the next frame
// header straight from the socket, holding no buffer. After each message
// the connection moves to a fresh goroutine, so that an idle connection
// waits on a 2 KB stack rather than the 4-8 KB that handling a message
// grows (about 3.4 KB per idle connection in all, memory_test.go).
// conn.go reads a message (unmasking, joining fragments, answering pings,
// enforcing the read limit), message.go parses it with json.go's
// validating scanner (offers and answers stay spans of the message, to be
// relayed byte for byte), handler.go builds the same swarm.Announce as
// HTTP and UDP and hands it to the tracker core (tracker/tracker.go
// Prepare: access list, rate limit, numwant), swarms.go updates the swarm
// and picks the peers to offer to under one shard lock, and the replies
// and relayed messages are appended into pooled buffers (message.go) and
// written each as one frame (at most Config.WriteTimeout per write; a
// peer that does not read is cut off). From socket to reply a reader
// opens server.go, handler.go, conn.go, message.go, json.go,
// tracker/tracker.go and swarms.go.
//
// # Messages (JSON text frames)
//
// info_hash, peer_id, to_peer_id and offer_id are JavaScript "binary"
// strings: exactly 20 characters, each U+0000 to U+00FF.
//
//	announce  {"action":"announce","info_hash","peer_id","event","left",
//	           "uploaded","downloaded","numwant","offers":[{"offer","offer_id"}]}
//	  reply   {"action":"announce","info_hash","complete","incomplete","interval"}
//	  offers  each of the first min(len(offers), numwant, Config.MaxOffers,
//	          the tracker's numwant cap) offers goes to a different peer of the
//	          swarm (a run of peers from a random start; never the sender) as
//	          {"action":"announce","offer","offer_id","peer_id","info_hash"},
//	          with the sender's peer_id. Offers to an empty swarm go nowhere:
//	          the client drops them after its offer timeout.
//	answer    {"action":"announce","info_hash","peer_id","to_peer_id",
//	           "offer_id","answer"}: relayed as {"action":"announce","answer",
//	          "offer_id","peer_id","info_hash"} to to_peer_id, and only when
//	          that peer's offer offer_id was relayed to this connection under
//	          this peer_id (each connection remembers the last 32 offers it
//	          was given). No reply to the sender, as bittorrent-tracker. An
//	          answer does not change the sender's peer state.
//	scrape    {"action":"scrape","info_hash": one binary string or a list}
//	  reply   {"action":"scrape","files":{<info_hash>:{"complete",
//	          "incomplete","downloaded"}},"flags":{"min_request_interval"}}
//	          Every asked hash gets an entry (zeros when unknown or refused by
//	          the access list). Herald has no full scrape here: a scrape
//	          without info_hash is an error.
//
// Events: "started", "completed" (counts a download when a leecher turns
// seeder), "stopped" (removes the peer; the reply still has the counts),
// and "", "empty", "update", BEP 21's "paused" or none (a plain announce),
// the names of tracker.ParseEvent, as over HTTP; any other is refused. A missing or non-numeric
// "left" makes a leecher, as bittorrent-tracker's Number(left) = NaN; a
// seeder stays a seeder.
//
// A peer_id is held by one connection per swarm: another connection
// announcing it is refused until the first one closes (a reconnecting
// browser gets it back as soon as its old socket is gone). Empty swarms
// are dropped, and their "downloaded" count with them.
//
// # Errors and limits
//
// A message that is not a valid request, or that the tracker refuses, is
// answered with {"failure reason": text} (errors.go lists the parse
// failures, bittorrent-tracker's texts where it has one; a refusal has
// the tracker's text, the same as over HTTP and UDP), plus "action" and
// "info_hash" once those were read, so that the client routes it to its
// torrent. The connection stays open. These close it, with the RFC 6455
// status:
//
//	message over Config.MaxMessageBytes (64 KiB)     1009 message too big
//	binary message                                   1003 unsupported data
//	text that is not UTF-8                           1007
//	unmasked or malformed frames, bad fragmentation  1002 protocol error
//	more than Config.MessageRate messages/s (20,     1008 policy violation
//	burst 200)
//	nothing received for Config.IdleTimeout          (TCP close)
//	server shutdown                                  1001 going away
//
// A connection over the message rate is closed rather than answered, so a
// flood costs one token-bucket check per message and no parsing. The
// per-address rate limit of HTTP and UDP (tracker.rate_limit) applies to
// announces and scrapes too, answered with its refusal. Work per
// message is bounded: at most Config.MaxOffers offers relayed, at most
// Config.MaxScrapeHashes hashes scraped, at most Config.MaxSwarmsPerConn
// swarms per connection.
package wstracker
