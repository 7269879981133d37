// Package tracker holds the rules of the tracker that do not depend on the
// protocol a client speaks. The HTTP, UDP and WebSocket frontends parse a
// request, hand it here, and encode what comes back; the access list, the
// rate limit, numwant, intervals, event names and the words of every
// refusal are decided once, in this package, for all three.
//
// A refusal is a *ClientError: a Reason (a small enum that counters index
// and metrics label) and the text the client reads. The texts live in one
// table (reason.go), so a refusal reads the same over every protocol.
package tracker
