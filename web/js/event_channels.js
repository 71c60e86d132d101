// The lesson's live events (slides) over the data channels the server opens on the subscribe
// connection (server/event_channels.py): the PRIMARY path, both ways. `events` is ordered and
// reliable (deck, page, ink, clear, the whole state when it opens, hiding the pointer);
// `pointer` is unordered without retransmits (a stale laser-pointer move is worthless; a
// copy of each small state rides along, see server/event_channels.py). The signalling socket
// carries these events only until the channels are open, or if they never open.

export const EVENTS = 'events';
export const POINTER = 'pointer';
const LABELS = new Set([EVENTS, POINTER]);

// A pointer move: unreliable; hiding the pointer is state (a lost hide leaves the dot on the
// page): reliable, as everything else.
export function channelFor(message) {
  return message.type === 'slide_pointer' && message.x != null ? POINTER : EVENTS;
}

export class EventChannels {
  // onMessage(message, label): every JSON object that arrives on either channel.
  constructor(pc, onMessage) {
    this.channels = new Map(); // label -> RTCDataChannel
    this.onMessage = onMessage;
    pc.addEventListener('datachannel', ({ channel }) => this._add(channel));
  }

  isOpen(label = EVENTS) {
    return this.channels.get(label)?.readyState === 'open';
  }

  // Sends on the message's channel; false when it is not open (the caller falls back).
  send(message) {
    const channel = this.channels.get(channelFor(message));
    if (!channel || channel.readyState !== 'open') return false;
    try {
      channel.send(JSON.stringify(message));
    } catch {
      return false; // closing under us
    }
    return true;
  }

  _add(channel) {
    if (!LABELS.has(channel.label)) return;
    this.channels.set(channel.label, channel);
    channel.addEventListener('message', (e) => {
      let message;
      try {
        message = JSON.parse(e.data);
      } catch {
        return;
      }
      if (message && typeof message === 'object') this.onMessage(message, channel.label);
    });
    channel.addEventListener('close', () => {
      if (this.channels.get(channel.label) === channel) this.channels.delete(channel.label);
    });
  }
}

// Which slide events are news (the rule server/client.py's EventOrder follows too). The
// server numbers them (`seq`); they come on two channels, one unordered, and on the socket
// until the channels open, so an older one may arrive after a newer, or the same one twice
// (the state on joining: on the socket, again when the channel opens). A state replaces
// everything up to its number, a stroke adds to it, a pointer move older than the newest
// state or move is stale.
export class EventOrder {
  constructor() {
    this.ordered = -1;
    this.state = -1;
    this.pointer = -1;
  }

  fresh(m) {
    const seq = m.seq;
    if (!Number.isInteger(seq)) return true;
    if (m.type === 'slide_pointer') {
      if (seq <= Math.max(this.pointer, this.state)) return false;
      this.pointer = seq;
      return true;
    }
    if (seq <= this.ordered) return false; // the same number: the same state, seen already
    this.ordered = seq;
    if (m.type === 'slides_state') this.state = seq;
    return true;
  }
}
