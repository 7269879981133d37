package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"herald/accounting"
	"herald/privdrop"
	"herald/snapshot"
	"herald/swarm"
)

// saver writes the snapshot and keeps the figures of the last save for
// /metrics.
type saver struct {
	path   string // as named after the privilege drop
	store  *swarm.Store
	ledger *accounting.Ledger // per-key accounting; nil without keys
	secret []byte             // the UDP connection-id keys
	log    *slog.Logger

	mu       sync.Mutex
	last     time.Time // start of the last successful save
	took     time.Duration
	bytes    int64
	failures uint64
}

func (s *saver) every(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.save()
		}
	}
}

// save writes the snapshot and logs the outcome; the error is also
// logged, and returned for the final save.
func (s *saver) save() error {
	t0 := time.Now()
	info, err := snapshot.Save(s.path, s.store, s.ledger, s.secret, t0)
	took := time.Since(t0)
	s.mu.Lock()
	if err != nil {
		s.failures++
	} else {
		s.last, s.took, s.bytes = t0, took, int64(info.Bytes)
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Error("snapshot not written", "err", err)
		return err
	}
	s.log.Info("snapshot written", "path", s.path, "torrents", info.Torrents, "peers", info.Peers, "bytes", info.Bytes, "took", took.Round(time.Microsecond))
	return nil
}

// lastSave is when the last successful save started; zero before the
// first.
func (s *saver) lastSave() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

var (
	saveTimeDesc     = prometheus.NewDesc("herald_snapshot_last_save_timestamp_seconds", "When the last successful snapshot save started (Unix time; absent before the first).", nil, nil)
	saveDurationDesc = prometheus.NewDesc("herald_snapshot_last_save_duration_seconds", "How long the last successful snapshot save took.", nil, nil)
	saveBytesDesc    = prometheus.NewDesc("herald_snapshot_last_save_bytes", "Size of the snapshot file the last successful save wrote.", nil, nil)
	saveFailuresDesc = prometheus.NewDesc("herald_snapshot_save_failures_total", "Snapshot saves that failed.", nil, nil)
)

func (s *saver) Describe(ch chan<- *prometheus.Desc) {
	ch <- saveTimeDesc
	ch <- saveDurationDesc
	ch <- saveBytesDesc
	ch <- saveFailuresDesc
}

func (s *saver) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(saveFailuresDesc, prometheus.CounterValue, float64(s.failures))
	if s.last.IsZero() {
		return
	}
	ch <- prometheus.MustNewConstMetric(saveTimeDesc, prometheus.GaugeValue, float64(s.last.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(saveDurationDesc, prometheus.GaugeValue, s.took.Seconds())
	ch <- prometheus.MustNewConstMetric(saveBytesDesc, prometheus.GaugeValue, float64(s.bytes))
}

// checkWritable makes sure a snapshot can be written next to path (its
// name after the privilege drop; before it, it was named now), by writing
// and removing a file there as the user herald now runs as. The error
// names the file, the user and what to change.
func checkWritable(path, now string, plan *privdrop.Plan) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err == nil {
		f.Close()
		return os.Remove(f.Name())
	}
	where, who := "a directory", "herald"
	if plan != nil && plan.User != "" {
		who = plan.User
	}
	if plan != nil && plan.RootDir != "" {
		where = "a directory inside tracker.rootdir " + plan.RootDir
	}
	return fmt.Errorf("snapshot.path %s cannot be written: %s cannot create files in %s (%w); set snapshot.path to a file in %s that %s can write, or snapshot.path off to keep no state",
		now, who, filepath.Dir(now), err, where, who)
}
