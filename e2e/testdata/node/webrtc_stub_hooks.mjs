// Module resolve hook for tracker_client.mjs: resolves 'webrtc-polyfill' to an
// empty module. The real one loads node-datachannel's native addon, which
// `npm ci --ignore-scripts` does not build (its install script downloads a
// prebuilt binary). Without RTCPeerConnection the client only skips WebRTC
// (ws://) trackers; HTTP and UDP trackers need none of it.
const stub = 'data:text/javascript,' + encodeURIComponent(
  'export const RTCPeerConnection = undefined\n' +
  'export const RTCSessionDescription = undefined\n' +
  'export const RTCIceCandidate = undefined\n'
)

export async function resolve (specifier, context, nextResolve) {
  if (specifier === 'webrtc-polyfill') return { url: stub, shortCircuit: true }
  return nextResolve(specifier, context)
}
