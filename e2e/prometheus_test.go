package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"herald/internal/heraldtest"
	"herald/version"
)

// The alert rules in dist/prometheus are valid and fire as their unit tests
// say (promtool test rules).
func TestPrometheusRules(t *testing.T) {
	requireClient(t, "prometheus (promtool)", commandExists("promtool"))
	dir := filepath.Join(repoRoot(t), "dist", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "herald.rules.yml"},
		{"test", "rules", "herald.rules.test.yml"},
	} {
		cmd := exec.Command("promtool", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// Debian's Prometheus scrapes a running herald with the shipped rules
// loaded, and a series comes back through its query API: the exposition
// parses for the real server, not only for client_golang's own parser.
func TestPrometheusScrapesHerald(t *testing.T) {
	requireClient(t, "prometheus", commandExists("prometheus"))
	h := startHerald(t, "127.0.0.1", "-snapshot", "off")
	dir := t.TempDir()
	rules, err := filepath.Abs(filepath.Join(repoRoot(t), "dist", "prometheus", "herald.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: herald
    static_configs:
      - targets: [%q]
`, rules, h.Addr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	web := net.JoinHostPort("127.0.0.1", strconv.Itoa(heraldtest.FreePort(t, "127.0.0.1")))
	heraldtest.StartProcess(t, dir, "prometheus",
		"--config.file=prometheus.yml", "--storage.tsdb.path=data",
		"--web.listen-address="+web)

	query := url.Values{"query": {`herald_build_info{job="herald"}`}}.Encode()
	var got struct {
		Status string
		Data   struct {
			Result []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := getJSON("http://"+web+"/api/v1/query?"+query, &got)
		if err == nil && got.Status == "success" && len(got.Data.Result) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald_build_info never came back from Prometheus: last %+v, %v", got, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	m := got.Data.Result[0].Metric
	if m["version"] != version.Release || m["instance"] != h.Addr || got.Data.Result[0].Value[1] != "1" {
		t.Errorf("herald_build_info from Prometheus: %+v = %v, want version %s, value 1", m, got.Data.Result[0].Value, version.Release)
	}
	checkGrafanaQueries(t, web)
}

// checkGrafanaQueries runs every query of dist/grafana/herald.json through
// Prometheus: each must parse and, except in panels documented as absent
// in some setups (no cluster here, no snapshot yet), return series, so a
// renamed metric breaks the test, not the operator's dashboard.
func checkGrafanaQueries(t *testing.T, web string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot(t), "dist", "grafana", "herald.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title, Description string
			Targets            []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dist/grafana/herald.json: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("dist/grafana/herald.json has no panels")
	}
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			expr := strings.ReplaceAll(target.Expr, "$instance", ".*")
			var res struct {
				Status string
				Error  string
				Data   struct{ Result []json.RawMessage }
			}
			deadline := time.Now().Add(15 * time.Second)
			for {
				err := getJSON("http://"+web+"/api/v1/query?"+url.Values{"query": {expr}}.Encode(), &res)
				if err == nil && (len(res.Data.Result) > 0 || strings.Contains(p.Description, "Absent when")) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("panel %q: query %s: %v %s %s, %d series", p.Title, expr, err, res.Status, res.Error, len(res.Data.Result))
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
		}
	}
}

// getJSON fetches u and decodes its JSON body into v.
func getJSON(u string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
