// Stands in for the npm package webrtc-polyfill, whose node build loads
// node-datachannel: that native module's install script downloads a
// prebuilt binary, which cannot be fetched here (npm install runs with
// --ignore-scripts). @roamhq/wrtc ships its binary inside its npm package,
// so simple-peer gets that real WebRTC implementation instead.
import wrtc from '@roamhq/wrtc'

export const { RTCPeerConnection, RTCSessionDescription, RTCIceCandidate } = wrtc
export default wrtc
