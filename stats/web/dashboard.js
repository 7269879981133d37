// herald's live dashboard: polls dashboard/data (a server-side ring of
// recent samples) and redraws its uPlot charts and the busiest-torrents
// table. window.heraldCharts exposes the charts to the browser test.
"use strict";

(function () {
  const pollMs = 1000;
  const height = 200;
  const width = () => Math.max(Math.min(document.body.clientWidth / (document.body.clientWidth > 1200 ? 2 : 1) - 40, 900), 320);

  // compact keeps axis ticks and legend values to a few characters, so
  // they never run into the axis label: 1.5k, 2M, 0.05.
  function compact(v) {
    if (v == null || !Number.isFinite(v)) return "–";
    const a = Math.abs(v);
    for (const [div, unit] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
      if (a >= div) return +(v / div).toPrecision(3) + unit;
    }
    return a >= 10 || a === 0 ? String(Math.round(v)) : String(+v.toPrecision(2));
  }

  // The time axis has one row of labels, the wall clock: uPlot's second row
  // (date and hour where they change) ran two labels into each other when
  // a minute began near the left edge. Tenths show when ticks fall between
  // seconds (the first seconds after start).
  const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  function timeLabels(u, ticks) {
    const tenths = ticks.some((t) => Math.round(t * 10) % 10 !== 0);
    return ticks.map((t) => clock.format(new Date(t * 1000)) + (tenths ? "." + (Math.round(t * 10) % 10) : ""));
  }

  // A log axis labels its powers of ten only: its other ticks are too close.
  const decade = (v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9;

  // series are [label, stroke, dashed] triples. Counts and rates start at
  // zero, so a flat line reads as flat; a log scale (response times, which
  // span microseconds to seconds) starts where the data does, and joins
  // the samples between which nothing was timed.
  function chart(id, series, yLabel, log) {
    const opts = {
      width: width(),
      height,
      series: [{}].concat(series.map(([label, stroke, dashed]) => ({
        label, stroke, width: 2, dash: dashed ? [6, 4] : undefined, spanGaps: !!log, value: (u, v) => compact(v),
      }))),
      axes: [{ space: 80, values: timeLabels }, { label: yLabel, size: 56, values: (u, ticks) => ticks.map((v) => (log && !decade(v) ? "" : compact(v))) }],
      scales: { x: { time: true }, y: log ? { distr: 3 } : { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      legend: { live: true },
    };
    return new uPlot(opts, [[]].concat(series.map(() => [])), document.getElementById(id));
  }

  // Per-protocol series, by the data's keys (the protocols' metric labels).
  const protocols = [["http", "HTTP", "#1f77b4"], ["udp", "UDP", "#ff7f0e"], ["ws", "WebSocket", "#2ca02c"]];
  const connected = protocols.filter(([key]) => key !== "udp");
  const series = (ps) => ps.map(([, label, stroke]) => [label, stroke]);
  const columns = (byProtocol, ps) => ps.map(([key]) => byProtocol[key] ?? []);
  const latencySeries = protocols.flatMap(([, label, stroke]) => [[label + " p50", stroke], [label + " p99", stroke, true]]);
  const palette = ["#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#1f77b4", "#ff7f0e", "#2ca02c"];
  const mib = (col) => col.map((v) => (v == null ? null : v / 1048576));

  const charts = {
    requests: chart("requests", series(protocols), "req/s"),
    errors: chart("errors", series(protocols), "errors/s"),
    latency: chart("latency", latencySeries, "ms", true),
    service: chart("service", series(protocols), "ms", true),
    connections: chart("connections", series(connected), "open"),
    peers: chart("peers", [["peers", "#2ca02c"], ["seeders", "#17becf"], ["leechers", "#bcbd22"]], "peers"),
    torrents: chart("torrents", [["torrents", "#8c564b"]], "torrents"),
    memory: chart("memory", [["RSS", "#1f77b4"], ["Go heap", "#2ca02c"], ["outside Go", "#9467bd"]], "MiB"),
    cpu: chart("cpu", [["CPU", "#d62728"]], "% of a core"),
    snapshot: chart("snapshot", [["age", "#7f7f7f"]], "seconds"),
  };
  window.heraldCharts = charts;

  // keyed draws a chart whose series are the keys of byKey (reasons,
  // limits), made again when the keys change.
  function keyed(name, yLabel) {
    let keys = "";
    return (time, byKey, label) => {
      const ks = Object.keys(byKey).sort();
      if (!charts[name] || ks.join("\n") !== keys) {
        charts[name]?.destroy();
        keys = ks.join("\n");
        charts[name] = chart(name, ks.map((k, i) => [label(k), palette[i % palette.length]]), yLabel);
      }
      charts[name].setData([time, ...ks.map((k) => byKey[k])]);
      return ks.length;
    };
  }
  const drawReasons = keyed("reasons", "errors/s");
  const drawLimits = keyed("limits", "% of limit");

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

  const note = (id, text) => { document.getElementById(id).textContent = text; };
  const status = document.getElementById("status");
  async function poll() {
    try {
      const res = await fetch("dashboard/data", { cache: "no-store" });
      if (!res.ok) throw new Error(res.status + " " + res.statusText);
      const d = await res.json();
      const t = d.time;
      charts.requests.setData([t, ...columns(d.requests_per_second, protocols)]);
      charts.errors.setData([t, ...columns(d.errors_per_second, protocols)]);
      charts.latency.setData([t, ...protocols.flatMap(([key]) => [d.latency_p50_ms[key] ?? [], d.latency_p99_ms[key] ?? []])]);
      charts.service.setData([t, ...columns(d.service_p99_ms, protocols)]);
      charts.connections.setData([t, ...columns(d.connections, connected)]);
      charts.peers.setData([t, d.peers, d.seeders, d.leechers]);
      charts.torrents.setData([t, d.torrents]);
      charts.memory.setData([t, ...["rss", "go_heap", "outside_go"].map((k) => mib(d.memory_bytes[k] ?? []))]);
      charts.cpu.setData([t, d.cpu_percent]);
      charts.snapshot.setData([t, d.snapshot_age_seconds]);
      const reasons = drawReasons(t, d.errors_by_reason, (k) => k);
      const limits = drawLimits(t, Object.fromEntries(Object.entries(d.limits).map(([k, v]) => [k, v.percent])),
        (k) => `${k} of ${compact(d.limits[k].limit)}`);
      renderTop(d.top);

      const span = `${Math.round(t.length * d.interval_seconds / 60)} min`;
      note("reasons-note", reasons ? "" : `(none in the last ${span})`);
      note("limits-note", limits ? "" : "(no limit set)");
      note("top-note", `(by peers, updated every ${d.slow_interval_seconds} s)`);
      const last = t.length - 1;
      const age = last >= 0 ? d.snapshot_age_seconds[last] : null;
      note("snapshot-note", !d.snapshot ? "(snapshots off)" : age == null ? "(no save yet)" : `(last save ${Math.round(age)} s ago)`);
      status.className = "";
      status.textContent = `${d.version} · up ${Math.floor(d.uptime_seconds)} s · ` +
        (last >= 0 ? `${d.torrents[last]} torrents, ${d.peers[last]} peers · ${t.length} samples every ${d.interval_seconds} s`
                   : "collecting samples…");
    } catch (e) {
      status.className = "stale";
      status.textContent = "no data: " + e.message;
    }
    setTimeout(poll, pollMs);
  }

  window.addEventListener("resize", () => {
    for (const c of Object.values(charts)) c.setSize({ width: width(), height });
  });
  poll();
})();
