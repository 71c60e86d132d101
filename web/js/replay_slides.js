// Which slide page and ink a recording shows at a given moment. Slide events are the lesson's
// JSON lines ({t: unix seconds, type: deck | page | pointer | ink | clear, ...}); video time v
// is unix time media_start + v. The state at a moment is the last deck, its last page, and the
// ink drawn on that page since (a page turn or "clear" wipes it). A deck event with `deck: null`
// closes the deck.

export function slideStateAt(events, unix) {
  const state = { deck: null, page: null, ink: [], pointer: null };
  for (const e of events) {
    if (e.t > unix) break;
    if (e.type === 'deck') {
      const closed = e.deck === null; // the teacher closed the deck: the camera again
      state.deck = closed ? null : e;
      state.page = closed ? null : (Number.isInteger(e.page) ? e.page : 1);
      state.ink = [];
    } else if (e.type === 'page') {
      state.page = e.page;
      state.ink = [];
      state.pointer = null;
    } else if (e.type === 'ink') {
      state.ink.push(e);
    } else if (e.type === 'clear') {
      state.ink = [];
    } else if (e.type === 'pointer') {
      state.pointer = e;
    }
  }
  return state;
}

// A page image, when the deck event says where pages are: a list `pages` of URLs, or a `url`
// with "{page}" in it (1-based page numbers).
export function pageImage(deck, page) {
  if (!deck || !page) return null;
  if (Array.isArray(deck.pages) && deck.pages[page - 1]) return deck.pages[page - 1];
  if (typeof deck.url === 'string' && deck.url.includes('{page}')) {
    return deck.url.replace('{page}', String(page));
  }
  return null;
}

// Ink strokes: `points` as [[x, y], ...] in 0..1 of the page, optional `color` and `width`.
export function drawInk(canvas, strokes) {
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  for (const s of strokes) {
    const pts = Array.isArray(s.points) ? s.points : [];
    if (pts.length < 2) continue;
    ctx.strokeStyle = s.color || '#e53935';
    ctx.lineWidth = (s.width || 0.004) * canvas.width;
    ctx.lineCap = 'round';
    ctx.beginPath();
    pts.forEach(([x, y], i) => (i ? ctx.lineTo(x * canvas.width, y * canvas.height)
      : ctx.moveTo(x * canvas.width, y * canvas.height)));
    ctx.stroke();
  }
}
