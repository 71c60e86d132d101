// Link health for the assisting teacher: 良好 / 一般 / 较差 from what the browser measures
// (loss, RTT, jitter, frames per second of the picture that matters most).

import { inboundByMid, roundTripTime, uplinkLoss } from './stats.js';

export const LEVEL_TEXT = { good: '良好', fair: '一般', poor: '较差', unknown: '检测中' };

// Thresholds: a lesson is still followable at "fair"; "poor" means frozen picture or
// broken speech is likely.
const POOR = { loss: 0.08, rtt: 0.5, jitter: 0.1, fps: 8 };
const FAIR = { loss: 0.02, rtt: 0.2, jitter: 0.03, fps: 15 };

const RANK = { unknown: 0, good: 1, fair: 2, poor: 3 };
const SERVER_LEVEL = { good: 'good', weak: 'fair', poor: 'poor' }; // `link` message quality

export function grade({ loss, rtt, jitter, fps }) {
  const known = [loss, rtt, jitter, fps].some((v) => v != null);
  if (!known) return 'unknown';
  const over = (limits) =>
    (loss != null && loss > limits.loss)
    || (rtt != null && rtt > limits.rtt)
    || (jitter != null && jitter > limits.jitter)
    || (fps != null && fps < limits.fps);
  if (over(POOR)) return 'poor';
  if (over(FAIR)) return 'fair';
  return 'good';
}

// Samples the session every `everyMs` and calls onUpdate({level, text, loss, rtt, jitter,
// fps}). `mainVideo()` returns the RemoteTrack whose fps counts (e.g. the teacher's camera).
export function watchHealth(session, onUpdate, { everyMs = 2000, mainVideo = () => null } = {}) {
  let last = null; // {packets, lost} summed over inbound tracks at the previous sample
  const timer = setInterval(async () => {
    const pc = session.subscribePc;
    if (session.state !== 'live' || !pc) {
      last = null;
      return;
    }
    const inbound = await inboundByMid(pc);
    let packets = 0;
    let lost = 0;
    let jitter = null;
    for (const row of Object.values(inbound)) {
      packets += row.packetsReceived || 0;
      lost += Math.max(0, row.packetsLost || 0);
      if (row.jitter != null) jitter = Math.max(jitter ?? 0, row.jitter);
    }
    let loss = null;
    if (last && packets + lost > last.packets + last.lost) {
      const dLost = Math.max(0, lost - last.lost);
      loss = dLost / (packets - last.packets + dLost);
    }
    last = { packets, lost };
    const main = mainVideo();
    const fps = main ? inbound[main.mid]?.framesPerSecond ?? 0 : null;
    const rtt = await roundTripTime(pc);
    const up = await uplinkLoss(session.publishPc);
    if (up != null) loss = Math.max(loss ?? 0, up);
    let level = grade({ loss, rtt, jitter, fps });
    // The server sees what we cannot: its estimate of our link and the layer it had to pick.
    const link = session.link;
    const server = link && Date.now() - link.at < 3 * everyMs ? SERVER_LEVEL[link.quality] : null;
    if (server && RANK[server] > RANK[level]) level = server;
    onUpdate({ level, text: LEVEL_TEXT[level], loss, rtt, jitter, fps, server: link?.quality ?? null });
  }, everyMs);
  return () => clearInterval(timer);
}
