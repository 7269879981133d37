// Opens herald's dashboard in Debian's headless chromium (never a
// downloaded browser), waits until every chart has drawn at least
// minPoints samples and the busiest-torrents table has rows, saves a
// screenshot and prints what the page holds as one JSON line.
//
// usage: node dashboard.mjs <dashboard URL> <screenshot.png> <minPoints>
import { chromium } from "playwright-core";

const [url, screenshot, minPointsArg] = process.argv.slice(2);
const minPoints = Number(minPointsArg);

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push("pageerror: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push("console: " + m.text()); });
  page.on("requestfailed", (r) => errors.push("requestfailed: " + r.url()));

  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction((n) => {
    const c = window.heraldCharts;
    return c && Object.values(c).every((u) => u.data[0].length >= n) &&
      document.querySelectorAll("#top tr").length > 0;
  }, minPoints, { timeout: 30000, polling: 200 });

  const result = await page.evaluate(() => {
    const out = { charts: {}, topRows: document.querySelectorAll("#top tr").length };
    for (const [name, u] of Object.entries(window.heraldCharts)) {
      out.charts[name] = {
        points: u.data[0].length,
        series: u.series.slice(1).map((s) => s.label),
        max: u.data.slice(1).map((col) => Math.max(...col.filter((v) => v != null))),
        // uPlot draws into a canvas; its backing store must be non-empty.
        canvas: (() => { const c = u.root.querySelector("canvas"); return c ? [c.width, c.height] : null; })(),
      };
    }
    out.status = document.getElementById("status").textContent;
    out.firstTopHash = document.querySelector("#top tr td")?.textContent ?? "";
    return out;
  });
  await page.screenshot({ path: screenshot, fullPage: true });
  result.errors = errors;
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
