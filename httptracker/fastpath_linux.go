//go:build !nofastpath

package httptracker

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// answerFunc is the event loops' one entry point into the tracker: it
// appends to dst the whole HTTP reply to the request in head, from the
// client at remote, with date as its Date header; or it returns false for
// a request it leaves to net/http (anything but an announce or a scrape).
// woke is when the loop's epoll_wait returned with the request's
// connection ready: its response time runs from there, so it counts the
// wait behind the connections served before it in the same pass; its
// service time runs from the call, the request's head parsed.
type answerFunc func(dst []byte, head *requestHead, remote netip.Addr, date []byte, woke time.Time) ([]byte, bool)

// fastAnswerer returns h's answerFunc for one event loop: it answers
// through the same code as ServeHTTP, in scratch space of its own, so it
// is not safe for concurrent use.
func (h *Handler) fastAnswerer() answerFunc {
	st := h.states.New().(*requestState)
	return func(dst []byte, head *requestHead, remote netip.Addr, date []byte, woke time.Time) ([]byte, bool) {
		path, query, hasQuery := strings.Cut(head.target, "?")
		rt, key := h.routeOf(path, hasQuery)
		if rt != routeAnnounce && rt != routeScrape {
			return dst, false
		}
		began := time.Now()
		defer h.observeFast(woke, began)
		addr := remote
		if h.trustedProxy(addr) {
			addr, _ = h.forwardedClient(head.proxyHeader(h.cfg.ProxyHeader))
		}
		var badRequest bool
		if rt == routeAnnounce {
			badRequest = h.answerAnnounce(st, query, &key, addr, addr.IsValid(), began)
		} else {
			badRequest = h.answerScrape(st, query, &key, addr, addr.IsValid(), began)
		}
		return appendReply(dst, badRequest, st.body, head, date), true
	}
}

// appendReply appends an HTTP response with body: 200 with a bencoded
// body, or 400 with a text one; the headers are the ones net/http sends.
func appendReply(dst []byte, badRequest bool, body []byte, head *requestHead, date []byte) []byte {
	dst = append(dst, replyStart(head.http10, badRequest)...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\nDate: "...)
	dst = append(dst, date...)
	switch {
	case !head.keepAlive:
		dst = append(dst, "\r\nConnection: close\r\n\r\n"...)
	case head.http10:
		dst = append(dst, "\r\nConnection: keep-alive\r\n\r\n"...)
	default:
		dst = append(dst, "\r\n\r\n"...)
	}
	return append(dst, body...)
}

// replyStart is a reply's status line and headers up to the value of its
// Content-Length. A client speaking HTTP/1.0 gets an HTTP/1.0 reply, as
// from net/http.
func replyStart(http10, badRequest bool) string {
	const (
		ok       = " 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
		bad      = " 400 Bad Request\r\nContent-Type: text/plain\r\nX-Content-Type-Options: nosniff\r\nContent-Length: "
		v10, v11 = "HTTP/1.0", "HTTP/1.1"
	)
	switch {
	case http10 && badRequest:
		return v10 + bad
	case http10:
		return v10 + ok
	case badRequest:
		return v11 + bad
	}
	return v11 + ok
}
