// Drives the npm bittorrent-tracker client for herald's e2e tests.
//
// Reads one JSON command per line on stdin and answers each with one JSON
// line on stdout, in order:
//   {"id":1,"op":"announce","peer":"a","url":"http://127.0.0.1:P/announce",
//    "infoHash":"<40 hex>","port":6001,"event":"started","left":1000}
//     -> {"id":1,"ok":true,"complete":1,"incomplete":2,"peers":["127.0.0.1:6002"]}
//   {"id":2,"op":"scrape","url":"...","infoHash":"<40 hex>"}
//     -> {"id":2,"ok":true,"complete":1,"incomplete":0,"downloaded":1}
// (a scrape of one info hash, through a client that never announces)
// A failed request answers {"id":N,"ok":false,"error":"..."}.
// "peer" names one client (one peer id, one port, one tracker URL) that lives
// until stdin closes; "event" is started, stopped, completed or update.
// A ws:// URL is announced to with numwant 0: the client then makes no
// WebRTC offers, so it needs no WebRTC stack (the stand-in below is never
// called), and the tracker answers with the swarm's counts.
import { randomBytes } from 'node:crypto'
import { register } from 'node:module'
import { createInterface } from 'node:readline'

register('./webrtc_stub_hooks.mjs', import.meta.url)
const { default: Client } = await import('bittorrent-tracker')

const clients = new Map()
let pending = null

function reply (msg) {
  process.stdout.write(JSON.stringify(msg) + '\n')
}

function finish (msg) {
  if (pending === null) return
  const { id, resolve } = pending
  pending = null
  reply({ id, ...msg })
  resolve()
}

function clientFor (cmd) {
  let client = clients.get(cmd.peer)
  if (client) return client
  client = new Client({
    infoHash: cmd.infoHash,
    peerId: randomBytes(20),
    announce: [cmd.url],
    port: cmd.port,
    ...(isWebSocket(cmd.url) ? { wrtc: {} } : {})
  })
  let peers = []
  let answer = null
  client.on('peer', addr => { peers.push(addr) })
  client.on('update', data => {
    // The client emits its peers synchronously right after 'update'.
    answer = { ok: true, complete: data.complete, incomplete: data.incomplete }
    peers = []
    setImmediate(() => finish({ ...answer, peers }))
  })
  client.on('scrape', data => {
    finish({ ok: true, complete: data.complete, incomplete: data.incomplete, downloaded: data.downloaded })
  })
  client.on('warning', err => finish({ ok: false, error: String(err.message || err) }))
  client.on('error', err => finish({ ok: false, error: String(err.message || err) }))
  clients.set(cmd.peer, client)
  return client
}

function isWebSocket (url) {
  return url.startsWith('ws://') || url.startsWith('wss://')
}

function announce (cmd) {
  const client = clientFor(cmd)
  const opts = { left: cmd.left, numwant: isWebSocket(cmd.url) ? 0 : 50 }
  switch (cmd.event) {
    case 'started': client.start(opts); break
    case 'stopped': client.stop(opts); break
    case 'completed': client.complete(opts); break
    case 'update': client.update(opts); break
    default: finish({ ok: false, error: `unknown event ${cmd.event}` })
  }
}

// scrape asks through a client of its own for its own info hash. The static
// Client.scrape helper cannot be used: over UDP it sends the hex string of
// the info hash as the hash bytes.
function scrape (cmd) {
  clientFor({ ...cmd, peer: `scrape ${cmd.url} ${cmd.infoHash}`, port: 1 }).scrape()
}

async function handle (line) {
  const cmd = JSON.parse(line)
  await new Promise(resolve => {
    pending = { id: cmd.id, resolve }
    try {
      if (cmd.op === 'announce') announce(cmd)
      else if (cmd.op === 'scrape') scrape(cmd)
      else finish({ ok: false, error: `unknown op ${cmd.op}` })
    } catch (err) {
      finish({ ok: false, error: String(err.message || err) })
    }
  })
}

const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  if (line.trim() !== '') await handle(line)
}
for (const client of clients.values()) client.destroy()
process.exit(0)
