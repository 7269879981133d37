package cluster_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"herald/cluster"
	"herald/swarm"
)

func TestConfigErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.creds")
	for _, tc := range []struct {
		name string
		cfg  cluster.Config
		want string
	}{
		{"no URL", cluster.Config{}, "no NATS URL"},
		{"comma list", cluster.Config{URLs: []string{"nats://a:4222,nats://b:4222"}}, "one URL per entry"},
		{"two kinds of credentials", cluster.Config{URLs: []string{"nats://a"}, Token: "t", User: "u"}, "one of credentials"},
		{"cert without key", cluster.Config{URLs: []string{"nats://a"}, CertFile: "c.pem"}, "certificate and key"},
		{"missing creds file", cluster.Config{URLs: []string{"nats://a"}, CredsFile: missing}, "missing.creds"},
		{"wildcard prefix", cluster.Config{URLs: []string{"nats://a"}, Prefix: "herald.>"}, "subject prefix"},
		{"empty token in prefix", cluster.Config{URLs: []string{"nats://a"}, Prefix: "a..b"}, "subject prefix"},
		{"tiny batch", cluster.Config{URLs: []string{"nats://a"}, BatchBytes: 100}, "batch size"},
		{"buffer below a batch", cluster.Config{URLs: []string{"nats://a"}, BatchBytes: 64 << 10, BufferBytes: 1 << 10}, "buffer"},
	} {
		_, err := cluster.New(tc.cfg, testLogger(t))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %q", tc.name, err, tc.want)
		}
	}
	node, err := cluster.New(cluster.Config{URLs: []string{"nats://127.0.0.1:4222"}, Prefix: "tracker-a.eu_1"}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if host, _ := os.Hostname(); !strings.HasPrefix(node.Name(), host+"-") || len(node.Name()) != len(host)+5 {
		t.Errorf("default node name %q, want the host name and four hex digits", node.Name())
	}
}

// Run with NATS never reachable returns as soon as its context ends.
func TestRunWithoutNATSStops(t *testing.T) {
	node, err := cluster.New(cluster.Config{URLs: []string{fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))}, ReconnectWait: 10 * time.Millisecond}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	store, err := swarm.New(swarm.Config{Shards: 1, Sink: node})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := node.Run(ctx, store); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("Run took %v to stop", took)
	}
	if node.Stats().Connected {
		t.Fatal("connected to nothing")
	}
}
