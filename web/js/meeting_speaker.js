// Who is speaking: from the audio the page receives, not from what anybody claims. Every
// SAMPLE_MS the energy each participant's audio track delivered since the last look
// (getStats totalAudioEnergy / totalSamplesDuration) gives its loudness; the loudest above
// SPEAKING_LEVEL for HOLD_SAMPLES looks in a row takes the focus, and keeps it until someone
// else does (a pause for breath does not move the picture).

const SAMPLE_MS = 400;
const SPEAKING_LEVEL = 0.01; // RMS level, 0..1 (~ -40 dBFS)
const HOLD_SAMPLES = 2;

export class SpeakerDetector {
  constructor(session, onChange) {
    this.session = session;
    this.onChange = onChange;
    this.levels = {}; // participant id -> last level
    this.current = null;
    this._candidate = null;
    this._count = 0;
    this._last = new Map(); // mid -> {energy, duration}
    this._timer = setInterval(() => this.sample(), SAMPLE_MS);
    session.on('ended', () => clearInterval(this._timer));
  }

  async sample() {
    const pc = this.session.subscribePc;
    if (!pc || pc.connectionState === 'closed') return;
    const report = await pc.getStats();
    const levels = {};
    report.forEach((s) => {
      if (s.type !== 'inbound-rtp' || s.kind !== 'audio' || s.mid == null) return;
      const remote = this.session.remote.get(s.mid);
      if (!remote || s.totalAudioEnergy === undefined) return;
      const before = this._last.get(s.mid);
      this._last.set(s.mid, { energy: s.totalAudioEnergy, duration: s.totalSamplesDuration });
      if (!before) return;
      const dt = s.totalSamplesDuration - before.duration;
      const level = dt > 0 ? Math.sqrt(Math.max(0, s.totalAudioEnergy - before.energy) / dt) : 0;
      levels[remote.participant] = Math.max(levels[remote.participant] || 0, level);
    });
    this.levels = levels;
    const [loudest, level] = Object.entries(levels).sort((a, b) => b[1] - a[1])[0] || [null, 0];
    if (!loudest || level < SPEAKING_LEVEL || loudest === this.current) {
      this._candidate = null;
      this._count = 0;
      return;
    }
    this._count = loudest === this._candidate ? this._count + 1 : 1;
    this._candidate = loudest;
    if (this._count >= HOLD_SAMPLES) {
      this.current = loudest;
      this._count = 0;
      this.onChange(loudest);
    }
  }
}
