// One npm bittorrent-tracker client in WebSocket mode:
//
//	node --import ./webrtc-polyfill-loader.mjs trackerclient.mjs URL NAME LEFT
//
// announces to the tracker at URL as peer "-WW0100-NAME" with LEFT bytes
// left, and waits until a peer found through the tracker (its WebRTC offer
// or answer relayed by the tracker) has opened a real WebRTC data channel
// (node WebRTC from @roamhq/wrtc) and the two have exchanged a message over
// it. Then it scrapes, prints one JSON line of what happened and exits 0;
// on an error, or after 30 s, it prints what it has and exits 1. Each
// process has its own WebSocket connection (the client pools sockets per
// process).
import Client from 'bittorrent-tracker/client'
import wrtc from '@roamhq/wrtc'

const [announce, name, left] = process.argv.slice(2)
const infoHash = '0123456789abcdef0123456789abcdef01234567'
const result = { name, warnings: [] }

let finished = false
function finish (code, error) {
  if (finished) return
  finished = true
  if (error) result.error = String(error)
  console.log(JSON.stringify(result))
  process.exit(code)
}
setTimeout(() => finish(1, 'timed out after 30 s'), 30000).unref()

const client = new Client({
  infoHash,
  peerId: Buffer.from(`-WW0100-${name}`.padEnd(20, '-')),
  announce: [announce],
  port: 6881,
  wrtc,
  // Host candidates on loopback are all it takes: no STUN servers.
  rtcConfig: { iceServers: [] },
  getAnnounceOpts: () => ({ left: Number(left), uploaded: 0, downloaded: 0, numwant: 5 })
})
client.on('error', err => finish(1, err))
client.on('warning', err => result.warnings.push(err.message))
client.on('update', data => { result.update = { complete: data.complete, incomplete: data.incomplete } })
client.on('scrape', data => {
  result.scrape = { complete: data.complete, incomplete: data.incomplete, downloaded: data.downloaded }
  client.destroy()
  // Let the data channel deliver our message before the process ends.
  setTimeout(() => finish(0), 500)
})
client.on('peer', peer => {
  const onConnect = () => {
    result.peer = Buffer.from(peer.id, 'hex').toString()
    peer.send(`hello from ${name}`)
  }
  if (peer.connected) onConnect()
  else peer.once('connect', onConnect)
  peer.on('data', data => {
    result.received = Buffer.from(data).toString()
    client.scrape()
  })
  peer.on('error', err => result.warnings.push(`peer: ${err.message}`))
})
client.start()
