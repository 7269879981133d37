package admin

import (
	"errors"
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
