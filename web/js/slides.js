// The slide a room shows: the page image (sharp, sized to fit its box), the ink on it and the
// laser pointer, kept in step with the session's `slides` events. Classrooms fetch the deck's
// pages in the background (current page first, one at a time, low priority) so that a page
// turn shows at once; the server marks pages immutable, so a page is fetched only once. The
// prefetches say who asks (the page's token as `Authorization: Bearer`, never in the URL, which
// stays one cacheable URL per page): the server paces them beside this classroom's lesson.

import { drawInk, pageImage } from './replay_slides.js';
import { el } from './ui.js';

export class SlideView {
  // `box`: the element the slide fills. `prefetch`: fetch every page of the deck ahead.
  // `token()`: the participant's token, sent with the prefetches (see above).
  constructor(box, { prefetch = true, token = () => '', onChange = () => {} } = {}) {
    this.box = box;
    this.prefetch = prefetch;
    this.token = token;
    this.onChange = onChange;
    this.deck = null;
    this.page = 0;
    this.ink = [];
    this.pointer = null;
    this.shownSrc = '';
    this._wanted = '';
    this._prefetched = new Set(); // page URLs fetched into the cache
    this._inflight = new Map(); // page URL -> promise of the prefetch under way
    this._prefetchRun = 0;
    this.image = el('img', { class: 'slide-image', alt: '', draggable: 'false' });
    this.canvas = el('canvas', { class: 'slide-ink' });
    this.dot = el('div', { class: 'slide-pointer', hidden: true });
    this.caption = el('div', { class: 'slide-caption', hidden: true });
    this.frame = el('div', { class: 'slide-frame' }, this.image, this.canvas, this.dot);
    this.root = el('div', { id: 'slide-view', class: 'slide-view', dataset: { page: '', shown: '', deck: '' } },
      this.frame, this.caption);
    box.append(this.root);
    new ResizeObserver(() => this.fit()).observe(box);
  }

  get active() {
    return !!this.deck;
  }

  // A `slides_state` message: the whole picture.
  setState({ deck, page, ink, pointer }) {
    const deckChanged = (deck?.id || '') !== (this.deck?.id || '');
    this.deck = deck || null;
    this.page = deck ? page : 0;
    this.ink = [...(ink || [])];
    this.pointer = pointer || null;
    this.root.dataset.deck = this.deck?.id || '';
    this.root.dataset.page = this.page ? String(this.page) : '';
    this._showPage();
    this.redraw();
    this._placePointer();
    if (deckChanged && this.deck && this.prefetch) this._prefetchDeck();
    this.onChange(this);
  }

  addStroke(stroke) {
    this.ink.push(stroke);
    this.redraw();
  }

  setPointer(pointer) {
    this.pointer = pointer && pointer.x != null ? pointer : null;
    this._placePointer();
  }

  url(page) {
    return pageImage(this.deck, page);
  }

  thumb(page) {
    return this.deck?.thumb ? this.deck.thumb.replace('{page}', String(page)) : null;
  }

  // The page image is swapped only once decoded: the old page stays until the new one can
  // be shown whole, with a note that it is coming.
  _showPage() {
    const src = this.deck ? this.url(this.page) : '';
    this._wanted = src;
    if (!src) {
      this.image.removeAttribute('src');
      this.shownSrc = '';
      this.root.dataset.shown = '';
      this.caption.hidden = true;
      return;
    }
    const page = this.page;
    this.caption.hidden = false;
    this.caption.textContent = `第 ${page} / ${this.deck.count} 页`;
    if (src === this.shownSrc) return;
    this.root.classList.add('loading');
    this.caption.textContent = `正在加载第 ${page} 页…`;
    const next = new Image();
    // a page being prefetched right now: wait for it rather than fetch it twice
    Promise.resolve(this._inflight.get(src)).then(() => {
      next.src = src;
      return next.decode();
    }).catch(() => null).then(() => {
      if (this._wanted !== src) return; // turned again meanwhile
      if (!next.naturalWidth) {
        this.caption.textContent = `第 ${page} 页加载失败，正在重试…`;
        setTimeout(() => { if (this._wanted === src) { this.shownSrc = ''; this._showPage(); } }, 2000);
        return;
      }
      this.image.src = src;
      this.shownSrc = src;
      this._prefetched.add(src); // in the cache now
      this.natural = { w: next.naturalWidth, h: next.naturalHeight };
      this.root.classList.remove('loading');
      this.root.dataset.shown = String(page);
      this.caption.textContent = `第 ${page} / ${this.deck.count} 页`;
      this.fit();
      this.onChange(this);
    });
  }

  // Largest page-shaped rectangle inside the box; the ink canvas gets device pixels.
  fit() {
    const { w, h } = this.natural || { w: 16, h: 9 };
    const bw = this.box.clientWidth;
    const bh = this.box.clientHeight;
    if (!bw || !bh) return;
    const scale = Math.min(bw / w, bh / h);
    const fw = Math.floor(w * scale);
    const fh = Math.floor(h * scale);
    this.frame.style.width = `${fw}px`;
    this.frame.style.height = `${fh}px`;
    const ratio = window.devicePixelRatio || 1;
    const cw = Math.round(fw * ratio);
    const ch = Math.round(fh * ratio);
    if (this.canvas.width !== cw || this.canvas.height !== ch) {
      this.canvas.width = cw;
      this.canvas.height = ch;
      this.redraw();
    }
    this._placePointer();
  }

  redraw() {
    drawInk(this.canvas, this.ink);
  }

  _placePointer() {
    const p = this.pointer;
    this.dot.hidden = !p;
    if (p) {
      this.dot.style.left = `${p.x * 100}%`;
      this.dot.style.top = `${p.y * 100}%`;
    }
  }

  // Every page of the deck into the browser's cache, one at a time and at low priority (the
  // live audio and video keep the link): always the next one not fetched yet at or after the
  // page shown now, so a page turn finds its page already here.
  async _prefetchDeck() {
    const run = ++this._prefetchRun;
    const deckId = this.deck.id; // each slides_state brings a new deck object: compare ids
    while (run === this._prefetchRun && this.deck?.id === deckId) {
      const src = this._nextToFetch();
      if (!src) return;
      const token = this.token();
      const headers = token ? { Authorization: `Bearer ${token}` } : {};
      const done = fetch(src, { priority: 'low', cache: 'force-cache', headers })
        .then((r) => (r.ok ? r.arrayBuffer().then(() => true) : false))
        .catch(() => false);
      this._inflight.set(src, done);
      const ok = await done;
      this._inflight.delete(src);
      if (ok) this._prefetched.add(src);
      else await new Promise((resolve) => { setTimeout(resolve, 3000); }); // link down: later
      this.root.dataset.prefetched = String(this._prefetched.size);
    }
  }

  _nextToFetch() {
    for (let i = 0; i < this.deck.count; i += 1) {
      const src = this.url(((this.page - 1 + i) % this.deck.count) + 1);
      if (src && !this._prefetched.has(src) && src !== this._wanted) return src; // not the one loading
    }
    return null;
  }
}

// Connects a SlideView to a session's slide events.
export function followSlides(session, view, { ignoreOwnInk = false } = {}) {
  session.on('slides', (state) => view.setState(state));
  session.on('slideink', (m) => {
    if (m.page !== view.page) return;
    if (ignoreOwnInk && m.by === session.you?.id) return; // drawn here already
    view.addStroke(m.stroke);
  });
  session.on('slidepointer', (m) => {
    if (m.page !== view.page) return;
    if (ignoreOwnInk && m.by === session.you?.id) return;
    view.setPointer(m);
  });
}
