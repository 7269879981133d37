// Two WebTorrent clients in headless Chromium share a file through the
// WebSocket tracker listening on the UNIX socket argv[2]:
//
//	unshare --net sh -c 'ip link set lo up && exec node webtorrent-browser.mjs SOCKET [SOCKET2]'
//
// With SOCKET2 the downloading client announces there instead: another
// instance of a cluster, which must relay between its peers and SOCKET's.
//
// Run it in a network namespace with only loopback: outside one, ICE picks
// the machine's external interface, which leads nowhere here. The tracker
// runs outside the namespace, so this script bridges a TCP port on
// 127.0.0.1 to its UNIX socket, serves the page and the webtorrent bundle
// from 127.0.0.1 (a secure context), and drives Debian's chromium with
// playwright-core. One page seeds 256 KiB of random bytes, the other adds
// the info hash and downloads them over WebRTC. Prints one JSON line and
// exits 0 when the SHA-256 of both sides match; 1 otherwise or after 75 s.
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { chromium } from 'playwright-core'

const [seederSocket, leecherSocket = seederSocket] = process.argv.slice(2)
const result = { steps: [] }
let browser

let finished = false
async function finish (code, error) {
  if (finished) return
  finished = true
  if (error) result.error = String(error && error.stack ? error.stack : error)
  console.log(JSON.stringify(result))
  if (browser) await browser.close().catch(() => {})
  process.exit(code)
}
setTimeout(() => finish(1, 'timed out after 75 s'), 75000).unref()

function listen (server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve(server.address().port))
  })
}

try {
  const bridge = socket => net.createServer(c => {
    const u = net.connect(socket)
    c.pipe(u).pipe(c)
    c.on('error', () => u.destroy())
    u.on('error', () => c.destroy())
  })
  const announce = `ws://127.0.0.1:${await listen(bridge(seederSocket))}/announce`
  const leecherAnnounce = leecherSocket === seederSocket
    ? announce
    : `ws://127.0.0.1:${await listen(bridge(leecherSocket))}/announce`

  const bundle = fs.readFileSync(new URL('./node_modules/webtorrent/dist/webtorrent.min.js', import.meta.url))
  const page = '<!doctype html><title>herald</title><script type="module">' +
    "import WebTorrent from '/webtorrent.min.js'; window.WebTorrent = WebTorrent</script>"
  const web = http.createServer((req, res) => {
    if (req.url === '/webtorrent.min.js') {
      res.setHeader('Content-Type', 'text/javascript')
      res.end(bundle)
    } else {
      res.setHeader('Content-Type', 'text/html')
      res.end(page)
    }
  })
  const origin = `http://127.0.0.1:${await listen(web)}`
  result.steps.push('bridge and page server up')

  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // playwright gives every launch a fresh profile directory itself.
      '--allow-loopback-in-peer-connection']
  })
  async function openPage (name) {
    // Camera and microphone permission make Chromium offer host candidates
    // instead of mDNS names, which do not resolve in the namespace.
    const context = await browser.newContext({ permissions: ['camera', 'microphone'] })
    const p = await context.newPage()
    p.on('console', msg => result.steps.push(`${name} console: ${msg.text()}`))
    p.on('pageerror', err => result.steps.push(`${name} page error: ${err.message}`))
    await p.goto(origin)
    await p.waitForFunction(() => window.WebTorrent !== undefined)
    return p
  }
  const seedPage = await openPage('seeder')
  const leechPage = await openPage('leecher')
  result.steps.push('pages loaded')

  const seeded = await seedPage.evaluate(async announce => {
    const data = new Uint8Array(256 << 10)
    for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536))
    const digest = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', data)))
      .map(b => b.toString(16).padStart(2, '0')).join('')
    const client = new WebTorrent({ dht: false, tracker: { rtcConfig: { iceServers: [] } } })
    window.client = client
    return new Promise((resolve, reject) => {
      client.on('error', err => reject(String(err)))
      client.seed(new File([data], 'herald-webtorrent-test.bin'), { announce: [announce] }, torrent => {
        torrent.on('warning', err => console.log(`warning: ${err.message || err}`))
        resolve({ magnetURI: torrent.magnetURI, infoHash: torrent.infoHash, length: data.length, digest })
      })
    })
  }, announce)
  result.seeded = seeded
  result.steps.push('seeding')

  // The bare info hash, not the magnet link: its tracker is the seeder's,
  // and the client would announce there too.
  const downloaded = await leechPage.evaluate(async ({ magnetURI, announce }) => {
    const client = new WebTorrent({ dht: false, tracker: { rtcConfig: { iceServers: [] } } })
    return new Promise((resolve, reject) => {
      client.on('error', err => reject(String(err)))
      client.add(magnetURI, { announce: [announce] }, torrent => {
        torrent.on('warning', err => console.log(`warning: ${err.message || err}`))
        torrent.on('wire', wire => console.log(`wire to ${wire.remoteAddress || 'a WebRTC peer'}`))
        const done = async () => {
          const data = new Uint8Array(await torrent.files[0].arrayBuffer())
          const digest = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', data)))
            .map(b => b.toString(16).padStart(2, '0')).join('')
          resolve({ length: data.length, digest, downloaded: torrent.downloaded, peers: torrent.numPeers })
        }
        if (torrent.done) done()
        else torrent.on('done', done)
      })
    })
  }, { magnetURI: `magnet:?xt=urn:btih:${seeded.infoHash}`, announce: leecherAnnounce })
  result.downloaded = downloaded
  result.steps.push('downloaded')

  if (downloaded.digest !== seeded.digest || downloaded.length !== seeded.length) {
    await finish(1, 'downloaded data differs from the seeded data')
  }
  await finish(0)
} catch (err) {
  await finish(1, err)
}
