package admin

import (
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"herald/access"
	"herald/accounting"
	"herald/bans"
	"herald/cluster"
	"herald/swarm"
)

// route is one method on one path. A path segment "{name}" matches any
// one segment, "{name...}" the rest of the path; the match is handed to
// handle. body and reply are the JSON types of the request body (nil for
// none) and of the reply, which the OpenAPI test holds the document to.
type route struct {
	method, path string
	handle       func(r *http.Request, param string) (int, any, error)
	body, reply  any
}

func (s *Server) table() []route {
	return []route{
		{"GET", "/openapi.json", func(*http.Request, string) (int, any, error) {
			return http.StatusOK, json.RawMessage(openAPI), nil
		}, nil, nil},
		{"GET", "/config", func(*http.Request, string) (int, any, error) {
			return http.StatusOK, s.cfg.Settings, nil
		}, nil, nil},
		{"POST", "/snapshot", s.snapshot, nil, snapshotReply{}},
		{"GET", "/access-list", s.listState, nil, listState{}},
		{"POST", "/access-list", s.listChange, listChange{}, listChangeReply{}},
		{"GET", "/access-list/{info_hash}", s.listHash, nil, hashState{}},
		{"GET", "/bans", s.listBans, nil, banList{}},
		{"POST", "/bans", s.ban, banRequest{}, bans.Ban{}},
		{"DELETE", "/bans/{prefix...}", s.unban, nil, unbanReply{}},
		{"PUT", "/keys/{key}", s.addKey, nil, keyReply{}},
		{"DELETE", "/keys/{key}", s.removeKey, nil, keyReply{}},
		{"GET", "/accounting", s.accountingPage, nil, accountingPage{}},
		{"GET", "/accounting/{key}", s.accountingEntry, nil, accounting.Entry{}},
	}
}

// match finds the route for method and path, with its parameter; when
// the path exists under other methods only, allowed lists them.
func (s *Server) match(method, path string) (rt *route, param, allowed string) {
	var methods []string
	for i := range s.routes {
		p, ok := matchPath(s.routes[i].path, path)
		if !ok {
			continue
		}
		if s.routes[i].method == method {
			return &s.routes[i], p, ""
		}
		methods = append(methods, s.routes[i].method)
	}
	slices.Sort(methods)
	return nil, "", strings.Join(methods, ", ")
}

func matchPath(template, path string) (param string, ok bool) {
	open := strings.IndexByte(template, '{')
	if open < 0 {
		return "", template == path
	}
	rest, ok := strings.CutPrefix(path, template[:open])
	if !ok || rest == "" {
		return "", false
	}
	if strings.HasSuffix(template, "...}") || !strings.Contains(rest, "/") {
		return rest, true
	}
	return "", false
}

type snapshotReply struct {
	Saved time.Time `json:"saved"`
	Took  string    `json:"took"`
}

func (s *Server) snapshot(*http.Request, string) (int, any, error) {
	if s.cfg.Snapshot == nil {
		return 0, nil, errorf(http.StatusConflict, "snapshots are off (snapshot.file off)")
	}
	t0 := time.Now()
	if err := s.cfg.Snapshot(); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, snapshotReply{Saved: t0.UTC(), Took: time.Since(t0).Round(time.Millisecond).String()}, nil
}

type listState struct {
	Mode     string `json:"mode"`
	Torrents int    `json:"torrents"`
}

type listChange struct {
	Add    []string `json:"add"`
	Remove []string `json:"remove"`
}

type listChangeReply struct {
	Mode     string `json:"mode"`
	Torrents int    `json:"torrents"`
	Added    int    `json:"added"`
	Removed  int    `json:"removed"`
}

type hashState struct {
	InfoHash string `json:"info_hash"`
	Listed   bool   `json:"listed"`
	Allowed  bool   `json:"allowed"`
}

func (s *Server) needList() error {
	if s.cfg.List == nil {
		return errorf(http.StatusConflict, "no access list is configured (access.whitelist or access.blacklist)")
	}
	return nil
}

func (s *Server) listState(*http.Request, string) (int, any, error) {
	if err := s.needList(); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, listState{Mode: s.cfg.List.Mode().String(), Torrents: s.cfg.List.Len()}, nil
}

func (s *Server) listChange(r *http.Request, _ string) (int, any, error) {
	if err := s.needList(); err != nil {
		return 0, nil, err
	}
	var req listChange
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	add, err := parseHashes(req.Add)
	if err != nil {
		return 0, nil, err
	}
	remove, err := parseHashes(req.Remove)
	if err != nil {
		return 0, nil, err
	}
	if len(add) == 0 && len(remove) == 0 {
		return 0, nil, errorf(http.StatusBadRequest, "body: nothing to add or remove")
	}
	reply := listChangeReply{Mode: s.cfg.List.Mode().String()}
	if reply.Added, err = s.changeList(cluster.ListAdd, add); err != nil {
		return 0, nil, err
	}
	if reply.Removed, err = s.changeList(cluster.ListRemove, remove); err != nil {
		return 0, nil, err
	}
	reply.Torrents = s.cfg.List.Len()
	return http.StatusOK, reply, nil
}

func parseHashes(hs []string) ([]swarm.InfoHash, error) {
	out := make([]swarm.InfoHash, 0, len(hs))
	for _, s := range hs {
		h, err := parseHash(s)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func parseHash(s string) (swarm.InfoHash, error) {
	var h swarm.InfoHash
	if len(s) != 40 {
		return h, errorf(http.StatusBadRequest, "info hash %q is not 40 hex digits", truncate(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, errorf(http.StatusBadRequest, "info hash %q is not 40 hex digits", s)
	}
	return h, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

func (s *Server) listHash(_ *http.Request, param string) (int, any, error) {
	if err := s.needList(); err != nil {
		return 0, nil, err
	}
	h, err := parseHash(param)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, hashState{InfoHash: strings.ToLower(param), Listed: s.cfg.List.Contains(h), Allowed: s.cfg.List.Allowed(h)}, nil
}

type banList struct {
	Bans []bans.Ban `json:"bans"`
}

func (s *Server) listBans(*http.Request, string) (int, any, error) {
	return http.StatusOK, banList{Bans: s.cfg.Bans.List(time.Now())}, nil
}

// banRequest bans an address or network for Duration (a Go duration,
// "90m", "24h") or until Expires (RFC 3339); one of the two.
type banRequest struct {
	Prefix   string    `json:"prefix"`
	Duration string    `json:"duration"`
	Expires  time.Time `json:"expires"`
}

// maxBan is the longest ban: long enough to mean "for good", short
// enough that every clock and JSON reader agrees on the date.
const maxBan = 100 * 365 * 24 * time.Hour

func (s *Server) ban(r *http.Request, _ string) (int, any, error) {
	var req banRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	p, err := bans.ParsePrefix(req.Prefix)
	if err != nil {
		return 0, nil, errorf(http.StatusBadRequest, "body: %v", err)
	}
	now := time.Now()
	var expires time.Time
	switch {
	case req.Duration != "" && !req.Expires.IsZero():
		return 0, nil, errorf(http.StatusBadRequest, "body: give duration or expires, not both")
	case req.Duration != "":
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 || d > maxBan {
			return 0, nil, errorf(http.StatusBadRequest, "body: duration %q is not a positive Go duration up to 100 years (e.g. 90m, 24h)", truncate(req.Duration))
		}
		expires = now.Add(d)
	case !req.Expires.IsZero():
		if !req.Expires.After(now) || req.Expires.Sub(now) > maxBan {
			return 0, nil, errorf(http.StatusBadRequest, "body: expires %s is not in the next 100 years", req.Expires.Format(time.RFC3339))
		}
		expires = req.Expires
	default:
		return 0, nil, errorf(http.StatusBadRequest, "body: give duration or expires")
	}
	b := bans.Ban{Prefix: p, Expires: expires.UTC().Truncate(time.Second), Reason: bans.ReasonManual}
	if err := s.cfg.Bans.Ban(b); err != nil {
		return 0, nil, err
	}
	s.publish(cluster.Change{Kind: cluster.Ban, Prefix: p, Expires: b.Expires})
	return http.StatusCreated, b, nil
}

type unbanReply struct {
	Prefix  netip.Prefix `json:"prefix"`
	Removed bool         `json:"removed"`
}

func (s *Server) unban(_ *http.Request, param string) (int, any, error) {
	p, err := bans.ParsePrefix(param)
	if err != nil {
		return 0, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	if !s.cfg.Bans.Unban(p) {
		return 0, nil, errorf(http.StatusNotFound, "%s is not banned", p)
	}
	s.publish(cluster.Change{Kind: cluster.Unban, Prefix: p})
	return http.StatusOK, unbanReply{Prefix: p, Removed: true}, nil
}

type keyReply struct {
	Key     string `json:"key"`
	Changed bool   `json:"changed"`
}

func (s *Server) keyParam(param string) (string, error) {
	if s.cfg.Keys == nil {
		return "", errorf(http.StatusConflict, "no access keys are configured (access.keys)")
	}
	if _, err := access.ParseKey(param); err != nil {
		return "", errorf(http.StatusBadRequest, "key %q is not 32 letters and digits", truncate(param))
	}
	return param, nil
}

func (s *Server) addKey(_ *http.Request, param string) (int, any, error) {
	k, err := s.keyParam(param)
	if err != nil {
		return 0, nil, err
	}
	added, err := s.cfg.Keys.Add(k)
	if err != nil {
		return 0, nil, err
	}
	s.publish(cluster.Change{Kind: cluster.KeyAdd, Key: k})
	if added {
		return http.StatusCreated, keyReply{Key: k, Changed: true}, nil
	}
	return http.StatusOK, keyReply{Key: k}, nil
}

func (s *Server) removeKey(_ *http.Request, param string) (int, any, error) {
	k, err := s.keyParam(param)
	if err != nil {
		return 0, nil, err
	}
	removed, err := s.cfg.Keys.Remove(k)
	if err != nil {
		return 0, nil, err
	}
	if !removed {
		return 0, nil, errorf(http.StatusNotFound, "key %s is not listed", k)
	}
	s.publish(cluster.Change{Kind: cluster.KeyRemove, Key: k})
	return http.StatusOK, keyReply{Key: k, Changed: true}, nil
}

// Accounting pages hold DefaultPage entries unless ?limit= says, at most
// MaxPage.
const (
	DefaultPage = 100
	MaxPage     = 1000
)

type accountingPage struct {
	Entries []accounting.Entry `json:"entries"`
	// Next is the after of the next page; "" on the last page.
	Next string `json:"next"`
}

func (s *Server) needLedger() error {
	if s.cfg.Ledger == nil {
		return errorf(http.StatusConflict, "no access keys are configured (access.keys)")
	}
	return nil
}

func (s *Server) accountingPage(r *http.Request, _ string) (int, any, error) {
	if err := s.needLedger(); err != nil {
		return 0, nil, err
	}
	q := r.URL.Query()
	limit := DefaultPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPage {
			return 0, nil, errorf(http.StatusBadRequest, "limit %q is not a whole number from 1 to %d", truncate(v), MaxPage)
		}
		limit = n
	}
	after := q.Get("after")
	if after != "" {
		if _, err := access.ParseKey(after); err != nil {
			return 0, nil, errorf(http.StatusBadRequest, "after %q is not a key", truncate(after))
		}
	}
	page := accountingPage{Entries: s.cfg.Ledger.Page(after, limit+1)}
	if len(page.Entries) > limit {
		page.Entries = page.Entries[:limit]
		page.Next = page.Entries[limit-1].Key.String()
	}
	return http.StatusOK, page, nil
}

func (s *Server) accountingEntry(_ *http.Request, param string) (int, any, error) {
	if err := s.needLedger(); err != nil {
		return 0, nil, err
	}
	k, err := access.ParseKey(param)
	if err != nil {
		return 0, nil, errorf(http.StatusBadRequest, "key %q is not 32 letters and digits", truncate(param))
	}
	e, ok := s.cfg.Ledger.Get(k)
	if !ok {
		return 0, nil, errorf(http.StatusNotFound, "key %s has no accounting", k)
	}
	return http.StatusOK, e, nil
}
