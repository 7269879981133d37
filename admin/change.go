package admin

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"herald/bans"
	"herald/cluster"
	"herald/swarm"
)

// Apply makes a change another node of the cluster published, as this
// node's own API would, without publishing it again.
func (s *Server) Apply(c cluster.Change) error {
	switch c.Kind {
	case cluster.ListAdd, cluster.ListRemove:
		if s.cfg.List == nil {
			return errors.New("admin: list change, but no access list is configured here")
		}
		if c.Kind == cluster.ListAdd {
			_, err := s.cfg.List.Add(c.InfoHashes...)
			return err
		}
		_, err := s.cfg.List.Remove(c.InfoHashes...)
		return err
	case cluster.KeyAdd, cluster.KeyRemove:
		if s.cfg.Keys == nil {
			return errors.New("admin: key change, but no access keys are configured here")
		}
		if c.Kind == cluster.KeyAdd {
			_, err := s.cfg.Keys.Add(c.Key)
			return err
		}
		_, err := s.cfg.Keys.Remove(c.Key)
		return err
	case cluster.Ban:
		if c.Reason != "" { // earned on the other node: adopted under this one's rules
			_, err := s.cfg.Bans.Adopt(bans.Ban{Prefix: c.Prefix, Expires: c.Expires, Reason: c.Reason}, time.Now())
			return err
		}
		return s.cfg.Bans.Ban(bans.Ban{Prefix: c.Prefix, Expires: c.Expires, Reason: bans.ReasonManual})
	case cluster.Unban:
		s.cfg.Bans.Unban(c.Prefix)
		return nil
	}
	return c.Validate()
}

// State is this node's admin-managed state, which another node of the
// cluster takes when it connects (cluster.Admin).
func (s *Server) State() cluster.State {
	var st cluster.State
	if l := s.cfg.List; l != nil {
		st.ListMode = l.Mode().String()
		st.List, st.ListChanged = l.State()
	}
	if k := s.cfg.Keys; k != nil {
		st.HasKeys = true
		st.Keys, st.KeysChanged = k.State()
	}
	st.Bans = s.cfg.Bans.List(time.Now())
	return st
}

// ApplyState takes another node's state when this one has connected or
// reconnected to the cluster (cluster.Admin). The access list and the
// keys are taken whole, additions and removals, when the other node's
// file changed later than this node's (the last writer wins: a node that
// missed changes while away has the older file); a node whose own file
// is newer keeps it. Bans are merged: each prefix banned until the later
// of the two expiries, an earned ban under this node's rules
// (bans.Table.Adopt).
func (s *Server) ApplyState(st cluster.State) error {
	var errs []error
	if l := s.cfg.List; l != nil && st.ListMode != "" {
		switch mine := l.Changed(); {
		case st.ListMode != l.Mode().String():
			errs = append(errs, fmt.Errorf("admin: the access list is a %s here, a %s on the other node; not taken", l.Mode(), st.ListMode))
		case st.ListChanged.After(mine):
			added, removed, err := l.Replace(st.List)
			errs = append(errs, err)
			s.logTaken("access list", added, removed, st.ListChanged, mine)
		}
	}
	if k := s.cfg.Keys; k != nil && st.HasKeys {
		if mine := k.Changed(); st.KeysChanged.After(mine) {
			added, removed, err := k.Replace(st.Keys)
			errs = append(errs, err)
			s.logTaken("keys", added, removed, st.KeysChanged, mine)
		}
	}
	now := time.Now()
	for _, b := range st.Bans {
		if b.Reason == bans.ReasonManual {
			s.cfg.Bans.Extend(b)
		} else if _, err := s.cfg.Bans.Adopt(b, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Server) logTaken(what string, added, removed int, theirs, mine time.Time) {
	if added+removed > 0 {
		s.cfg.Logger.Info("admin: took the "+what+" of another node of the cluster, changed after this node's",
			"added", added, "removed", removed, "theirs", theirs.UTC().Format(time.RFC3339Nano), "mine", mine.UTC().Format(time.RFC3339Nano))
	}
}

// publish sends a change made here to the other nodes; a failure is
// logged, the change stays made here.
func (s *Server) publish(c cluster.Change) {
	if s.cfg.Publish == nil {
		return
	}
	if err := s.cfg.Publish(c); err != nil {
		s.cfg.Logger.Warn("admin: change not sent to the cluster", "kind", c.Kind, "err", err)
	}
}

// changeList adds (ListAdd) or removes hashes here and publishes the
// change in messages of at most cluster.MaxChangeHashes. It returns how
// many hashes changed.
func (s *Server) changeList(kind cluster.ChangeKind, hashes []swarm.InfoHash) (int, error) {
	if len(hashes) == 0 {
		return 0, nil
	}
	var n int
	var err error
	if kind == cluster.ListAdd {
		n, err = s.cfg.List.Add(hashes...)
	} else {
		n, err = s.cfg.List.Remove(hashes...)
	}
	if err != nil {
		return 0, &httpError{http.StatusInternalServerError, err.Error()}
	}
	for len(hashes) > 0 {
		chunk := hashes[:min(len(hashes), cluster.MaxChangeHashes)]
		hashes = hashes[len(chunk):]
		s.publish(cluster.Change{Kind: kind, InfoHashes: chunk})
	}
	return n, nil
}
