// herald's live dashboard: polls dashboard/data (a server-side ring of
// recent samples) and redraws five uPlot charts and the busiest-torrents
// table. window.heraldCharts exposes the charts to the browser test.
"use strict";

(function () {
  const pollMs = 1000;
  const width = () => Math.max(Math.min(document.body.clientWidth / (document.body.clientWidth > 1200 ? 2 : 1) - 40, 900), 320);

  function chart(id, series, yLabel) {
    const opts = {
      width: width(),
      height: 220,
      series: [{}].concat(series.map(([label, stroke]) => ({ label, stroke, width: 2 }))),
      axes: [{}, { label: yLabel, size: 60 }],
      // Counts and rates start at zero, so a flat line reads as flat.
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      legend: { live: true },
    };
    return new uPlot(opts, [[]].concat(series.map(() => [])), document.getElementById(id));
  }

  // Per-protocol series, by the data's keys (the protocols' metric labels).
  const protocols = [["http", "HTTP", "#1f77b4"], ["udp", "UDP", "#ff7f0e"], ["ws", "WebSocket", "#2ca02c"]];
  const connected = protocols.filter(([key]) => key !== "udp");
  const series = (ps) => ps.map(([, label, stroke]) => [label, stroke]);
  const columns = (byProtocol, ps) => ps.map(([key]) => byProtocol[key] ?? []);
  const charts = {
    requests: chart("requests", series(protocols), "req/s"),
    errors: chart("errors", series(protocols), "errors/s"),
    connections: chart("connections", series(connected), "open"),
    peers: chart("peers", [["peers", "#2ca02c"], ["seeders", "#17becf"], ["leechers", "#bcbd22"]], "peers"),
    torrents: chart("torrents", [["torrents", "#8c564b"]], "torrents"),
  };
  window.heraldCharts = charts;

  function renderTop(rows) {
    const body = document.getElementById("top");
    body.replaceChildren(...rows.map((r) => {
      const tr = document.createElement("tr");
      for (const v of [r.info_hash, r.seeders, r.leechers, r.completed]) {
        const td = document.createElement("td");
        td.textContent = String(v);
        tr.appendChild(td);
      }
      return tr;
    }));
  }

  const status = document.getElementById("status");
  async function poll() {
    try {
      const res = await fetch("dashboard/data", { cache: "no-store" });
      if (!res.ok) throw new Error(res.status + " " + res.statusText);
      const d = await res.json();
      charts.requests.setData([d.time, ...columns(d.requests_per_second, protocols)]);
      charts.errors.setData([d.time, ...columns(d.errors_per_second, protocols)]);
      charts.connections.setData([d.time, ...columns(d.connections, connected)]);
      charts.peers.setData([d.time, d.peers, d.seeders, d.leechers]);
      charts.torrents.setData([d.time, d.torrents]);
      renderTop(d.top);
      // Seeders, leechers and the busiest torrents need a walk over the
      // store, so the server refreshes them less often than the counters.
      const slow = `updated every ${d.slow_interval_seconds} s`;
      document.getElementById("peers-note").textContent = `(seeders and leechers ${slow})`;
      document.getElementById("top-note").textContent = `(by peers, ${slow})`;
      const last = d.time.length - 1;
      status.className = "";
      status.textContent = `${d.version} · up ${Math.floor(d.uptime_seconds)} s · ` +
        (last >= 0 ? `${d.torrents[last]} torrents, ${d.peers[last]} peers · ${d.time.length} samples every ${d.interval_seconds} s`
                   : "collecting samples…");
    } catch (e) {
      status.className = "stale";
      status.textContent = "no data: " + e.message;
    }
    setTimeout(poll, pollMs);
  }

  window.addEventListener("resize", () => {
    for (const c of Object.values(charts)) c.setSize({ width: width(), height: 220 });
  });
  poll();
})();
