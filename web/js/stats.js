// Plain-object summaries of getStats(): what the UI, the keyframe watchdog and tests read.

const INBOUND_FIELDS = [
  'kind', 'mid', 'packetsReceived', 'packetsLost', 'bytesReceived', 'jitter',
  'framesDecoded', 'framesReceived', 'framesDropped', 'framesPerSecond', 'frameWidth',
  'frameHeight', 'freezeCount', 'totalFreezesDuration', 'keyFramesDecoded',
  'totalSamplesReceived', 'concealedSamples', 'audioLevel',
];

// Inbound RTP of one connection, by mid.
export async function inboundByMid(pc) {
  const out = {};
  if (!pc || pc.connectionState === 'closed') return out;
  const report = await pc.getStats();
  report.forEach((s) => {
    if (s.type !== 'inbound-rtp' || s.mid == null) return;
    const row = {};
    for (const f of INBOUND_FIELDS) if (s[f] !== undefined) row[f] = s[f];
    out[s.mid] = row;
  });
  return out;
}

// RTT of the nominated candidate pair, seconds (Chrome measures it with consent checks).
export async function roundTripTime(pc) {
  if (!pc || pc.connectionState === 'closed') return null;
  const report = await pc.getStats();
  let rtt = null;
  report.forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded'
        && s.currentRoundTripTime !== undefined) rtt = s.currentRoundTripTime;
  });
  return rtt;
}

// Loss the far end reports about what we send (receiver reports from the SFU), 0..1.
export async function uplinkLoss(pc) {
  if (!pc || pc.connectionState === 'closed') return null;
  const report = await pc.getStats();
  let worst = null;
  report.forEach((s) => {
    if (s.type === 'remote-inbound-rtp' && s.fractionLost !== undefined) {
      worst = Math.max(worst ?? 0, s.fractionLost);
    }
  });
  return worst;
}
