// Peer-connection helpers shared by the publish and subscribe sides.

// No STUN/TURN by default: the SFU offers its own host candidates (docs/signalling.md).
export const RTC_CONFIG = { iceServers: [] };

export function newPeerConnection() {
  return new RTCPeerConnection(RTC_CONFIG);
}

// No trickle ICE in our protocol: each SDP is sent once gathering is complete. The timeout
// sends what we have rather than hanging when one interface never finishes.
export function iceGathered(pc, timeoutMs = 5000) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === 'complete') done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// Calls onFail when a connection has failed, or stayed "disconnected" for graceMs (Chrome
// may sit in "disconnected" for a long time before declaring "failed").
export function watchConnection(pc, onChange, onFail, graceMs = 5000) {
  let timer = null;
  pc.addEventListener('connectionstatechange', () => {
    const s = pc.connectionState;
    clearTimeout(timer);
    timer = null;
    if (s === 'failed') onFail(`peer connection ${s}`);
    else if (s === 'disconnected') {
      timer = setTimeout(() => onFail('peer connection disconnected too long'), graceMs);
    }
    onChange(s);
  });
}
