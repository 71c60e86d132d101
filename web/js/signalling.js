// The client side of docs/signalling.md: one WebSocket, a publish connection (we offer) and a
// subscribe connection (the server offers), whose data channels carry the slide events both
// ways (event_channels.js; the socket only until they open). Reconnects by itself: every
// failure tears the whole attempt down and starts a new one (new socket, new peer
// connections, join again), because the SFU cannot restart ICE.
//
// Events (CustomEvent, data in .detail):
//   state         {state: connecting|live|reconnecting|ended, message}
//   joined        {you, room}
//   participants  {participants: [participant]}   visible participants except ourselves
//   roomstate     {called_on, hands, muted, host}
//   track         RemoteTrack                       a remote track now carries a source
//   trackremoved  RemoteTrack
//   muted         {muted}                           the host asked this class or member to mute
//   error         {code, message, detail}           message is Chinese, for the people
//   link          {quality, estimate_kbps, loss_pct, rtt_ms, layers, ...}   every 2 s
//   slides        {deck, page, ink, pointer}        the room's slide, on join and each change
//   slideink      {page, by, stroke}                one more stroke (piece) on the page
//   slidepointer  {page, by, x, y}                  the laser pointer (x null: hidden)
//   ended         {reason, message}

import { EventChannels, EventOrder } from './event_channels.js';
import { iceGathered, newPeerConnection, watchConnection } from './peer.js';
import { inboundByMid } from './stats.js';

const VERSION = 1;
const LIVE_TIMEOUT_MS = 20000; // an attempt not live by then is abandoned and retried
const PING_EVERY_MS = 10000;
const SILENCE_LIMIT_MS = 35000; // no message at all for this long: the socket is dead
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
const KEYFRAME_CHECK_MS = 1000;

// Reasons in `ended` after which coming back would be wrong.
const FINAL_ENDINGS = {
  replaced: '此链接已在另一个窗口或设备上打开，本窗口已断开。',
  left: '您已离开课堂。',
};
const FINAL_ERRORS = new Set(['bad_token', 'expired_token']);

export const STATE_TEXT = {
  idle: '准备中',
  connecting: '连接中',
  live: '直播中',
  reconnecting: '重新连接中',
  ended: '已结束',
};

export function tokenFromPage(loc = window.location) {
  return new URLSearchParams(loc.search).get('token') || '';
}

export function wsUrl(token, loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws?token=${encodeURIComponent(token)}`;
}

// One received track, as the latest subscribe_offer described its mid.
export class RemoteTrack {
  constructor(mid, info, transceiver) {
    this.mid = mid;
    this.participant = info.participant;
    this.name = info.name || '';
    this.role = info.role || '';
    this.source = info.source;
    this.kind = info.kind;
    this.transceiver = transceiver;
    this.track = transceiver.receiver.track;
  }

  get key() {
    return `${this.participant}:${this.source}`;
  }
}

export class Session extends EventTarget {
  // sendEncodings: per source, e.g. {camera: [{maxBitrate: 250000}]} for a thin uplink.
  constructor({ token = tokenFromPage(), url = null, sendEncodings = {}, retryUnknownRoomMs = 5000 } = {}) {
    super();
    this.token = token;
    this.url = url || wsUrl(token);
    this.sendEncodings = sendEncodings;
    this.retryUnknownRoomMs = retryUnknownRoomMs;
    this.state = 'idle';
    this.you = null;
    this.room = null;
    this.participants = new Map(); // id -> participant (visible, not us)
    this.roomState = { called_on: null, hands: [], muted: [], host: null };
    this.remote = new Map(); // mid -> RemoteTrack
    this.local = {}; // source -> MediaStreamTrack we publish
    this.lastError = null;
    this.link = null; // the server's latest view of our downlink (`link` message)
    this.slides = { deck: null, page: 0, ink: [], pointer: null }; // the room's slide
    this.channels = null; // EventChannels of the subscribe connection
    // Slide events by path (tests and support staff): the channel is the primary one.
    // received: every one that came; applied: the news among them (see EventOrder).
    this.slideEvents = {
      received: { channel: 0, socket: 0 }, applied: { channel: 0, socket: 0 }, sent: { channel: 0, socket: 0 },
    };
    this._eventOrder = new EventOrder();
    this.reconnects = 0; // attempts after the first, for tests and the banner
    this._gen = 0; // attempt number: callbacks of an abandoned attempt do nothing
    this._failures = 0;
    this._ws = null;
    this.publishPc = null;
    this.subscribePc = null;
    this._pubTransceivers = {}; // source -> RTCRtpTransceiver
    this._pubBusy = false;
    this._pubDirty = false;
    this._publishWaiter = null;
    this._subChain = Promise.resolve();
    this._timers = new Set();
    this._lastMessageAt = 0;
    this._keyframeProgress = new Map(); // mid -> {packets, since, backoff}
    this._waitingForRoom = false;
  }

  on(type, fn) {
    this.addEventListener(type, (e) => fn(e.detail));
    return this;
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // -- public API ---------------------------------------------------------------------------

  // Returns false when there is nothing to start (no token in the link).
  start() {
    if (this.state !== 'idle') return this.state !== 'ended';
    if (!this.token) {
      this._end('no_token', '链接不完整：缺少课堂令牌。请使用教务发给您的完整链接。');
      return false;
    }
    this._connect();
    return true;
  }

  // Publish `track` as `source`, or stop publishing it with null. Sources: camera, mic,
  // screen, or camera layers camera/h, camera/m, camera/l. Several at once (one
  // negotiation): setLocal({'camera/h': t1, 'camera/l': t2}).
  setLocal(source, track = null) {
    const changes = typeof source === 'string' ? { [source]: track } : source;
    for (const [name, t] of Object.entries(changes)) {
      if (t) this.local[name] = t;
      else delete this.local[name];
    }
    if (this.you) this._publish(this._gen);
  }

  send(type, fields = {}) {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) return false;
    this._ws.send(JSON.stringify({ v: VERSION, type, ...fields }));
    return true;
  }

  callOn(participantId) { return this.send('call_on', { participant: participantId }); }
  mute(participantId, muted) { return this.send('mute', { participant: participantId, muted }); }
  handOver(participantId) { return this.send('host', { participant: participantId }); }
  hand(raised) { return this.send('hand', { raised }); }
  keyframe(mid) { return this.send('keyframe', { mid }); }
  // A live lesson event: on its data channel (the primary path); on the socket only while
  // the channels are not open.
  sendEvent(type, fields = {}) {
    if (this.channels?.send({ v: VERSION, type, ...fields })) {
      this.slideEvents.sent.channel += 1;
      return true;
    }
    const sent = this.send(type, fields);
    if (sent) this.slideEvents.sent.socket += 1;
    return sent;
  }

  // Slides (the teacher's): a deck id from POST /api/decks, or null to close it.
  slideDeck(deck, page = 1) { return this.sendEvent('slide_deck', { deck, page }); }
  slidePage(page) { return this.sendEvent('slide_page', { page }); }
  slidePointer(x, y) { return this.sendEvent('slide_pointer', { x, y }); }
  slideInk(points, color, width) { return this.sendEvent('slide_ink', { points, color, width }); }
  slideClear() { return this.sendEvent('slide_clear'); }

  leave() {
    this.send('leave');
    this._end('left', FINAL_ENDINGS.left);
  }

  // Inbound stats by mid, annotated with who and what each track is.
  async inboundStats() {
    const byMid = await inboundByMid(this.subscribePc);
    const out = [];
    for (const [mid, row] of Object.entries(byMid)) {
      const remote = this.remote.get(mid);
      if (!remote) continue;
      out.push({ ...row, participant: remote.participant, name: remote.name, source: remote.source });
    }
    return out;
  }

  // -- one attempt ---------------------------------------------------------------------------

  _connect() {
    const gen = ++this._gen;
    const again = this.reconnects > 0 && !this._waitingForRoom;
    this._setState(again ? 'reconnecting' : 'connecting', this._waitingForRoom ? this.lastError?.message : '');
    const ws = new WebSocket(this.url);
    this._ws = ws;
    this._lastMessageAt = Date.now();
    ws.onopen = () => {
      if (gen === this._gen) this.send('join');
    };
    ws.onmessage = (e) => {
      if (gen !== this._gen) return;
      this._lastMessageAt = Date.now();
      let message;
      try {
        message = JSON.parse(e.data);
      } catch {
        return;
      }
      this._onMessage(gen, message);
    };
    ws.onclose = (e) => {
      if (gen !== this._gen) return;
      if (e.code === 4401 || (this.lastError && FINAL_ERRORS.has(this.lastError.code))) {
        const msg = this.lastError?.message || '链接无效，请向教务索取新的链接。';
        this._end(this.lastError?.code || 'bad_token', msg);
      } else {
        this._lost(gen, `socket closed (${e.code})`);
      }
    };
    this._after(gen, LIVE_TIMEOUT_MS, () => {
      if (this.state !== 'live') this._lost(gen, 'not live in time');
    });
    this._every(gen, PING_EVERY_MS, () => {
      if (Date.now() - this._lastMessageAt > SILENCE_LIMIT_MS) this._lost(gen, 'socket silent');
      else this.send('ping');
    });
    this._every(gen, KEYFRAME_CHECK_MS, () => this._keyframeWatchdog(gen));
  }

  // Something broke: drop this attempt and start another after a growing, jittered pause.
  _lost(gen, why) {
    if (gen !== this._gen || this.state === 'ended') return;
    console.warn(`tongke: connection lost: ${why}`);
    this._failures += 1;
    this.reconnects += 1;
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (this._failures - 1));
    this._retry(backoff * (0.75 + Math.random() * 0.5), 'reconnecting');
  }

  _retry(delayMs, state, message = '') {
    this._teardown();
    this._setState(state, message);
    const next = this._gen;
    const timer = setTimeout(() => {
      this._timers.delete(timer);
      if (next === this._gen && this.state !== 'ended') this._connect();
    }, delayMs);
    this._timers.add(timer);
  }

  _teardown() {
    this._gen += 1; // silence every callback of the old attempt
    for (const t of this._timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    this._timers.clear();
    if (this._ws) {
      this._ws.onopen = this._ws.onmessage = this._ws.onclose = null;
      try { this._ws.close(); } catch { /* already closed */ }
      this._ws = null;
    }
    for (const remote of this.remote.values()) this._emit('trackremoved', remote);
    this.remote.clear();
    this._keyframeProgress.clear();
    for (const pc of [this.publishPc, this.subscribePc]) if (pc) pc.close();
    this.publishPc = this.subscribePc = null;
    this.channels = null; // closed with their connection
    this._eventOrder = new EventOrder(); // the next room's board numbers afresh
    this._pubTransceivers = {};
    this._pubBusy = this._pubDirty = false;
    if (this._publishWaiter) this._publishWaiter.reject(new Error('attempt abandoned'));
    this._publishWaiter = null;
    this._subChain = Promise.resolve();
    this.you = null;
  }

  _end(reason, message) {
    if (this.state === 'ended') return;
    this._teardown();
    this._setState('ended', message);
    this._emit('ended', { reason, message });
  }

  _setState(state, message = '') {
    if (this.state === state && !message) return;
    this.state = state;
    if (state === 'live') this._failures = 0;
    this._emit('state', { state, message });
  }

  _after(gen, ms, fn) {
    const t = setTimeout(() => {
      this._timers.delete(t);
      if (gen === this._gen) fn();
    }, ms);
    this._timers.add(t);
  }

  _every(gen, ms, fn) {
    const t = setInterval(() => {
      if (gen === this._gen) fn();
    }, ms);
    this._timers.add(t);
  }

  // -- messages ------------------------------------------------------------------------------

  _onMessage(gen, m) {
    switch (m.type) {
      case 'joined':
        this.you = m.you;
        this.room = m.room;
        this.participants = new Map(
          m.participants.filter((p) => p.id !== m.you.id).map((p) => [p.id, p]),
        );
        this._waitingForRoom = false;
        this._emit('joined', { you: m.you, room: m.room });
        this._emitParticipants();
        this._setRoomState(m.state);
        this._publish(gen);
        break;
      case 'subscribe_offer':
        // One at a time and in order: the next offer may only be applied after this answer.
        this._subChain = this._subChain.then(() => this._onSubscribeOffer(gen, m)).catch((err) => {
          console.error('tongke: subscribe_offer failed', err);
          this._lost(gen, `subscribe failed: ${err}`);
        });
        break;
      case 'publish_answer':
        if (this._publishWaiter) this._publishWaiter.resolve(m.sdp);
        break;
      case 'participant_joined':
      case 'participant_updated':
        if (m.participant.id !== this.you?.id) {
          this.participants.set(m.participant.id, m.participant);
          this._emitParticipants();
        }
        break;
      case 'participant_left':
        this.participants.delete(m.participant.id);
        this._emitParticipants();
        break;
      case 'state':
        this._setRoomState(m.state);
        break;
      case 'muted':
        this._emit('muted', { muted: m.muted });
        break;
      case 'ended':
        if (FINAL_ENDINGS[m.reason]) this._end(m.reason, FINAL_ENDINGS[m.reason]);
        else if (m.reason === 'server_shutdown') this._lost(gen, 'server restarting');
        else this._end(m.reason || 'ended', '本节课已结束。');
        break;
      case 'error':
        this._onError(gen, m);
        break;
      case 'slides_state':
      case 'slide_ink':
      case 'slide_pointer':
        this._onSlideEvent(m, 'socket'); // the fallback: the channels are not open yet
        break;
      case 'link':
        this.link = { ...m, at: Date.now() };
        this._emit('link', this.link);
        break;
      default:
        break; // pong and anything newer than this page
    }
  }

  // What the data channels bring: slide events, and errors about what we sent on them.
  _onChannelMessage(gen, m) {
    if (gen !== this._gen) return;
    if (m.type === 'error') this._onError(gen, m);
    else if (m.type === 'slides_state' || m.type === 'slide_ink' || m.type === 'slide_pointer') {
      this._onSlideEvent(m, 'channel');
    }
  }

  _onSlideEvent(m, via) {
    this.slideEvents.received[via] += 1;
    if (!this._eventOrder.fresh(m)) return; // came the other way first, or overtaken
    this.slideEvents.applied[via] += 1;
    if (m.type === 'slides_state') {
      this.slides = { deck: m.deck, page: m.page, ink: m.ink || [], pointer: m.pointer };
      this._emit('slides', this.slides);
    } else if (m.type === 'slide_ink') {
      if (m.page === this.slides.page) this.slides.ink.push(m.stroke);
      this._emit('slideink', m);
    } else {
      this._emit('slidepointer', m);
    }
  }

  _onError(gen, m) {
    this.lastError = m;
    this._emit('error', { code: m.code, message: m.message, detail: m.detail });
    if (this._publishWaiter) this._publishWaiter.reject(new SignallingError(m));
    if (m.code === 'unknown_room') {
      // An observer arrived before the lesson started: look again shortly.
      this._waitingForRoom = true;
      this._retry(this.retryUnknownRoomMs, 'connecting', m.message);
    }
  }

  _emitParticipants() {
    this._emit('participants', { participants: [...this.participants.values()] });
  }

  _setRoomState(state) {
    this.roomState = { called_on: null, hands: [], muted: [], host: null, ...state };
    this._emit('roomstate', this.roomState);
  }

  // -- subscribe side ------------------------------------------------------------------------

  async _onSubscribeOffer(gen, m) {
    if (gen !== this._gen) return;
    if (!this.subscribePc) {
      const pc = newPeerConnection();
      this.subscribePc = pc;
      this.channels = new EventChannels(pc, (message) => this._onChannelMessage(gen, message));
      watchConnection(pc, () => this._checkLive(gen), (why) => this._lost(gen, `subscribe ${why}`));
    }
    const pc = this.subscribePc;
    await pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await iceGathered(pc);
    if (gen !== this._gen) return;
    this.send('subscribe_answer', { sdp: pc.localDescription.sdp });
    this._rebind(pc, m.tracks || {});
  }

  // The server re-uses transceivers as sources come and go: compare each mid's source.
  _rebind(pc, tracks) {
    const byMid = new Map(pc.getTransceivers().filter((t) => t.mid != null).map((t) => [t.mid, t]));
    for (const [mid, old] of [...this.remote]) {
      const info = tracks[mid];
      if (!info || `${info.participant}:${info.source}` !== old.key) {
        this.remote.delete(mid);
        this._keyframeProgress.delete(mid);
        this._emit('trackremoved', old);
      }
    }
    for (const [mid, info] of Object.entries(tracks)) {
      if (this.remote.has(mid) || !byMid.has(mid)) continue;
      const remote = new RemoteTrack(mid, info, byMid.get(mid));
      this.remote.set(mid, remote);
      this._emit('track', remote);
    }
  }

  // The SFU holds a new subscriber back until a keyframe comes; a decoder that never sees
  // one shows nothing. Ask for one when a bound video track receives no packets.
  async _keyframeWatchdog(gen) {
    if (!this.subscribePc || this.subscribePc.connectionState !== 'connected') return;
    const stats = await inboundByMid(this.subscribePc);
    if (gen !== this._gen) return;
    const now = Date.now();
    for (const remote of this.remote.values()) {
      if (remote.kind !== 'video') continue;
      const packets = stats[remote.mid]?.packetsReceived ?? 0;
      const p = this._keyframeProgress.get(remote.mid);
      if (!p || p.packets !== packets) {
        this._keyframeProgress.set(remote.mid, { packets, since: now, backoff: 1000 });
      } else if (now - p.since >= p.backoff) {
        this.keyframe(remote.mid);
        // A still screen share may legitimately send nothing: ask less and less often.
        p.since = now;
        p.backoff = Math.min(p.backoff * 2, 8000);
      }
    }
  }

  // -- publish side --------------------------------------------------------------------------

  // Negotiate the publish connection for the current local tracks; coalesces calls made while
  // a negotiation is under way into one more round.
  async _publish(gen) {
    if (gen !== this._gen || !this.you) return;
    if (this._pubBusy) {
      this._pubDirty = true;
      return;
    }
    if (!this.publishPc && Object.keys(this.local).length === 0) return;
    this._pubBusy = true;
    try {
      do {
        this._pubDirty = false;
        await this._negotiatePublish(gen);
      } while (this._pubDirty && gen === this._gen);
    } catch (err) {
      if (gen !== this._gen) return;
      console.error('tongke: publish failed', err);
      if (err instanceof SignallingError) {
        // Refused (role, bad SDP): retrying would be refused again. Keep watching.
        this.publishPc?.close();
        this.publishPc = null;
        this._pubTransceivers = {};
        this._checkLive(gen);
      } else {
        this._lost(gen, `publish failed: ${err}`);
      }
    } finally {
      if (gen === this._gen) this._pubBusy = false;
    }
  }

  async _negotiatePublish(gen) {
    if (!this.publishPc) {
      const pc = newPeerConnection();
      this.publishPc = pc;
      watchConnection(pc, () => this._checkLive(gen), (why) => this._lost(gen, `publish ${why}`));
    }
    const pc = this.publishPc;
    const tx = this._pubTransceivers;
    for (const [source, track] of Object.entries(this.local)) {
      if (!tx[source]) {
        const init = { direction: 'sendonly' };
        if (this.sendEncodings[source]) init.sendEncodings = this.sendEncodings[source];
        tx[source] = pc.addTransceiver(track, init);
      } else if (tx[source].sender.track !== track) {
        await tx[source].sender.replaceTrack(track);
      }
    }
    for (const source of Object.keys(tx)) {
      if (!this.local[source]) {
        // A stopped source leaves an inactive m-line; a later share gets a fresh transceiver,
        // because the SFU only announces tracks on new ones.
        await tx[source].sender.replaceTrack(null);
        tx[source].direction = 'inactive';
        delete tx[source];
      }
    }
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    if (gen !== this._gen) return;
    const tracks = {};
    for (const [source, t] of Object.entries(tx)) if (t.mid != null) tracks[t.mid] = source;
    const answered = new Promise((resolve, reject) => {
      this._publishWaiter = { resolve, reject };
    });
    this.send('publish', { sdp: pc.localDescription.sdp, tracks });
    const sdp = await withTimeout(answered, 15000, 'no publish_answer');
    this._publishWaiter = null;
    if (gen !== this._gen) return;
    await pc.setRemoteDescription({ type: 'answer', sdp });
    this._checkLive(gen);
  }

  // Live: joined, receiving, and (if we publish) sending.
  _checkLive(gen) {
    if (gen !== this._gen || !this.you) return;
    const sub = this.subscribePc?.connectionState === 'connected';
    const pub = !this.publishPc || this.publishPc.connectionState === 'connected';
    if (sub && pub) this._setState('live');
  }
}

class SignallingError extends Error {
  constructor(m) {
    super(`${m.code}: ${m.detail || m.message}`);
    this.code = m.code;
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(what)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
