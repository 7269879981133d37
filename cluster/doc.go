// Package cluster keeps several herald instances serving one tracker: each
// answers from its own RAM, and tells the others, through NATS, what its
// clients announced. It replaces opentracker's livesync (UDP multicast on one
// LAN, unauthenticated, no catch-up) with NATS: unicast across networks,
// NATS's own authentication and TLS, and a state transfer for instances that
// start or come back.
//
// # Subjects
//
//	<prefix>.announces       batches of announce records, every node to all
//	<prefix>.sync            catch-up requests, queue group "sync": one answers
//	<prefix>.sync.<node id>  catch-up requests to one node, for its own peers
//	<prefix>.inbox.>         replies: catch-up streams and their acknowledgements
//	<prefix>.ws.>            WebTorrent swarms (webtorrent.go)
//	<prefix>.accounting      per-key accounting, for a site's database (with
//	                         access.keys; accounting.go), published only
//	<prefix>.admin           admin changes (access list, keys, bans) and the
//	                         bans clients earn (admin.go)
//	<prefix>.admin.state     requests for the admin state of a node that
//	                         connects, queue group "admin-state" (adminstate.go)
//
// The prefix (default "herald") lets several trackers share one NATS. A
// node's messages never come back to it (the connection is made with no
// echo), and every message carries the sender's node id as well.
//
// # Trust
//
// A node publishes and subscribes on those subject patterns and
// nothing else; docs/nats-server.conf.example grants exactly that (tested
// by permissions_test.go). Whoever else may publish on <prefix>.sync and
// read <prefix>.inbox.> could ask for every peer address, and whoever may
// subscribe to <prefix>.sync could answer catch-ups: no other NATS user
// should have these rights. A node applies what other nodes send as the
// tracker applies announces: the access list (Config.Allowed) and
// swarm.ValidPeer, refusals counted by reason. Config.SharedKeyFile adds
// an HMAC tag to every message (auth.go), so that a NATS client without the
// key can neither feed peers in, nor ask for them, nor answer a catch-up.
//
// # Announces
//
// The node is the store's swarm.Sink. Each announce the store accepted
// becomes a 27-byte (IPv4) or 39-byte (IPv6) record in the current batch:
// flags (event, seeder), info hash, packed address. A batch is published
// every FlushInterval (default 1s), or at once when it reaches BatchBytes
// (default 64 KiB, about 2400 IPv4 records). At full batches the traffic is
// 27 bytes per IPv4 announce and sending node, plus NATS's ~30 bytes of
// protocol per message; each other node receives the same. The receiving
// node stores the peer as an announce with FromCluster set and asks for no
// peers; the store marks it synced, expires it like any other, and the sink
// never sends it back out.
//
// Republish rule: started, completed and stopped announces, and any change
// of a peer's seeder state, are always sent. A plain refresh (no event, same
// seeder state) is sent only if that peer was last sent RepublishAfter ago
// or more (default peer timeout / 3, 15 minutes for opentracker's 45; the
// clock for this moves once per flush interval). So a
// remote copy is refreshed at least every RepublishAfter plus a flush
// interval while the peer keeps announcing, well within the peer timeout,
// and a client that re-announces every few seconds costs one record per 15
// minutes. The node remembers recently sent peers in a fixed table of 65536
// slots (1 MiB); a peer pushed out of it is simply sent again.
//
// # Ordering and loss
//
// Batches are numbered per node. A receiver that sees a number skipped (a
// batch dropped from a full buffer, or lost with a NATS server) asks that
// node directly for its own peers; an idle node publishes an empty batch
// every 10 flush intervals, so a lost last batch is noticed too. Direct
// requests to one node are at most one per 30 flush intervals.
//
// Announces of one peer to two instances within about one flush interval of
// each other may be applied in either order on a third: the cluster does not
// order announces across instances. Clients re-announce minutes apart, so
// this matters only to clients that hop between instances at once.
//
// # Catch-up
//
// A node that connects or reconnects asks <prefix>.sync for the state. One
// member of the queue group, chosen by NATS, streams its whole store
// (store.Dump) to the asker in numbered chunks of at most a batch; every
// 16th chunk waits for the asker's acknowledgement, so a large state never
// overruns the asker or the servers. The asker merges each chunk
// (store.Restore: the fresher age of a peer wins, expired peers are
// dropped, and so are peers stopped since it asked: the batch with a stop
// made after the dump can arrive before the stream) and only then joins
// the queue group, so a node restarted empty never answers for the
// cluster. A node also asks every node it hears from
// for the first time for that node's own peers (<prefix>.sync.<id>): the
// one-member answer can lack batches a third node published before the
// NATS servers learned of the asker's subscription, and the direct answers
// cannot (see sync.go).
//
// JetStream could replay a stream of announces instead, but it needs a
// JetStream-enabled NATS, stores every announce on disk, and a replay is
// bounded by retention rather than by the tracker's own state; the store
// already holds exactly what a newcomer needs. Core NATS is enough.
//
// # NATS down
//
// The tracker never waits for NATS. New returns at once, Run connects in the
// background and retries forever; announces are served from local state.
// Batches wait in a ring of BufferBytes (default 8 MiB, ~300,000 IPv4
// announces); when it is full the oldest batch is dropped and counted, and
// its number is the gap that makes the others ask this node for its peers.
// Losing NATS, regaining it and the buffer overflowing are logged once each,
// not per message. On reconnect the node catches up again.
//
// # After a partition
//
// A node cut off, from NATS or by a split of the NATS cluster, misses the
// stops announced elsewhere meanwhile; its own stops wait in its buffer
// and do go out. Each node is the authority on the peers that announced
// to it, and the others keep with every peer they learned which node it
// came from (a number of four bits in the store's record, see sync.go).
// When a node hears from another after missing some of its batches, it
// asks that node for its own peers, as above, and then also removes the
// peers from that node that the answer lacks and that were not announced
// since it asked: the stops it missed. Both sides of a split do this for
// each other, whichever changed, so afterwards every instance holds the
// same peers. A full catch-up leaves out the peers the asker announced
// itself, for the same reason: a node that returns knows its own peers
// best, and its stops of them may not have reached the member yet. A peer
// taken from a full catch-up gets its origin from the direct catch-up that
// follows.
//
// Removing what a node's answer lacks gives whoever can answer for a node
// the power to remove its peers; whoever can publish announces already
// can, with stops. Both are the rights docs/nats-server.conf.example keeps
// to herald nodes, and a shared key keeps to holders of the key.
package cluster
