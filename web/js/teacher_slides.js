// The teacher's slides: upload a deck, turn pages (buttons, ←/→, PageUp/PageDown,
// thumbnails), the laser pointer and the pen. The server holds the room's slide state; this
// page sends changes and shows what the server says, drawing its own ink at once.

import { tokenFromPage } from './signalling.js';
import { SlideView, followSlides } from './slides.js';
import { $, el, notify } from './ui.js';

export const ACCEPT = '.pdf,.ppt,.pptx,.pps,.ppsx,.odp,.doc,.docx,.odt,application/pdf';
const COLORS = [['#e53935', '红'], ['#1e88e5', '蓝'], ['#43a047', '绿'], ['#212121', '黑']];
const PEN_WIDTH = 0.004; // of the page width: ~8 px on a 1920 px classroom display
const SEND_EVERY_MS = 50; // pen pieces and pointer moves
const MAX_PIECE = 400; // points per message (the server takes up to 500)

export function setupTeacherSlides(session, box) {
  const input = el('input', { id: 'deck-file', type: 'file', accept: ACCEPT, hidden: true });
  const upload = el('button', { id: 'deck-upload', class: 'btn btn-big', text: '上传课件', onclick: () => input.click() });
  const status = el('span', { id: 'deck-status', class: 'deck-status', text: '上传 PDF 或 PPT 课件：学生端清晰显示，几乎不占网络' });
  const stage = el('div', { id: 'teacher-slide', class: 'teacher-slide' });
  const label = el('span', { id: 'page-label', class: 'page-label' });
  const prev = el('button', { id: 'prev-page', class: 'btn', text: '上一页', onclick: () => turn(-1) });
  const next = el('button', { id: 'next-page', class: 'btn', text: '下一页', onclick: () => turn(1) });
  const tools = {};
  for (const [tool, text] of [['none', '翻页'], ['pointer', '激光笔'], ['pen', '画笔']]) {
    tools[tool] = el('button', { class: 'btn tool', 'data-tool': tool, text, onclick: () => setTool(tool) });
  }
  const swatches = COLORS.map(([color, name]) => el('button', {
    class: 'swatch', 'data-color': color, title: `${name}色`, style: `background:${color}`,
    onclick: () => { pen.color = color; setTool('pen'); },
  }));
  const clear = el('button', { id: 'clear-ink', class: 'btn', text: '清除笔迹', onclick: () => session.slideClear() });
  const close = el('button', { id: 'close-deck', class: 'btn', text: '关闭课件', onclick: () => session.slideDeck(null) });
  const thumbs = el('div', { id: 'thumbs', class: 'thumbs' });
  const panel = el('div', { id: 'deck-panel', class: 'deck-panel', hidden: true },
    stage,
    el('div', { class: 'slides-tools' }, prev, label, next, ...Object.values(tools), ...swatches, clear, close),
    thumbs);
  box.append(el('div', { class: 'slides-bar' }, upload, input, status), panel);

  const view = new SlideView(stage, { prefetch: false, onChange: render });
  followSlides(session, view, { ignoreOwnInk: true });
  const pen = { tool: 'none', color: COLORS[0][0], stroke: null, sent: 0, timer: null };
  let lastPointer = 0;

  function render() {
    const open = view.active;
    panel.hidden = !open;
    document.body.classList.toggle('deck-open', open);
    if (!open) return;
    label.textContent = `第 ${view.page} / ${view.deck.count} 页`;
    prev.disabled = view.page <= 1;
    next.disabled = view.page >= view.deck.count;
    if (thumbs.dataset.deck !== view.deck.id) {
      thumbs.dataset.deck = view.deck.id;
      thumbs.replaceChildren(...Array.from({ length: view.deck.count }, (_, i) => el('img', {
        class: 'thumb', src: view.thumb(i + 1), alt: `第 ${i + 1} 页`, loading: 'lazy',
        'data-page': String(i + 1), onclick: () => session.slidePage(i + 1),
      })));
    }
    for (const t of thumbs.children) {
      const current = Number(t.dataset.page) === view.page;
      if (current && !t.classList.contains('current')) t.scrollIntoView({ block: 'nearest', inline: 'nearest' });
      t.classList.toggle('current', current);
    }
  }

  // Keys pressed faster than the server answers count from the page asked for last.
  let asked = null; // {page, at}
  function turn(delta) {
    if (!view.active) return;
    const from = asked && performance.now() - asked.at < 2000 ? asked.page : view.page;
    const page = Math.min(view.deck.count, Math.max(1, from + delta));
    if (page === from) return;
    asked = { page, at: performance.now() };
    session.slidePage(page);
  }
  session.on('slides', (state) => { if (!asked || state.page === asked.page) asked = null; });

  function setTool(tool) {
    pen.tool = tool;
    for (const [name, button] of Object.entries(tools)) button.classList.toggle('btn-active', name === tool);
    for (const s of swatches) s.classList.toggle('current', tool === 'pen' && s.dataset.color === pen.color);
    view.frame.dataset.tool = tool;
    if (tool !== 'pointer') hidePointer();
  }
  setTool('none');

  // -- keys ---------------------------------------------------------------------------------

  document.addEventListener('keydown', (e) => {
    if (!view.active || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.target.closest?.('input, textarea, select, [contenteditable]')) return;
    const step = { ArrowRight: 1, PageDown: 1, ArrowDown: 1, ArrowLeft: -1, PageUp: -1, ArrowUp: -1 }[e.key];
    if (step) {
      e.preventDefault();
      turn(step);
    } else if (e.key === 'Home') session.slidePage(1);
    else if (e.key === 'End') session.slidePage(view.deck.count);
  });

  // -- pointer and pen -----------------------------------------------------------------------

  const at = (e) => {
    const r = view.frame.getBoundingClientRect();
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return [clamp((e.clientX - r.left) / r.width), clamp((e.clientY - r.top) / r.height)];
  };
  const frame = view.frame;
  frame.addEventListener('pointerdown', (e) => {
    if (pen.tool !== 'pen' || !view.active) return;
    frame.setPointerCapture(e.pointerId);
    const p = at(e);
    pen.stroke = { points: [p, p], color: pen.color, width: PEN_WIDTH };
    pen.sent = 0;
    view.addStroke(pen.stroke); // drawn here at once; sent in pieces
    pen.timer = setInterval(flushPen, SEND_EVERY_MS);
    e.preventDefault();
  });
  frame.addEventListener('pointermove', (e) => {
    if (pen.tool === 'pen' && pen.stroke) {
      pen.stroke.points.push(at(e));
      view.redraw();
    } else if (pen.tool === 'pointer' && view.active) {
      const [x, y] = at(e);
      view.setPointer({ x, y });
      const now = performance.now();
      if (now - lastPointer >= SEND_EVERY_MS) {
        lastPointer = now;
        session.slidePointer(x, y);
      }
    }
  });
  const endStroke = () => {
    if (!pen.stroke) return;
    clearInterval(pen.timer);
    flushPen();
    pen.stroke = null;
  };
  frame.addEventListener('pointerup', endStroke);
  frame.addEventListener('pointercancel', endStroke);
  frame.addEventListener('pointerleave', () => { if (pen.tool === 'pointer') hidePointer(); });

  // The points not sent yet, after the last one sent (so that the pieces join up).
  function flushPen() {
    const s = pen.stroke;
    if (!s || s.points.length <= pen.sent) return;
    const piece = s.points.slice(Math.max(0, pen.sent - 1)).map(([x, y]) => [round(x), round(y)]);
    for (let i = 0; i < piece.length - 1; i += MAX_PIECE - 1) {
      session.slideInk(piece.slice(i, i + MAX_PIECE), s.color, s.width);
    }
    pen.sent = s.points.length;
  }

  function hidePointer() {
    if (view.pointer) session.slidePointer(null, null);
    view.setPointer(null);
  }

  // -- upload --------------------------------------------------------------------------------

  input.addEventListener('change', () => {
    const file = input.files[0];
    input.value = '';
    if (file) uploadDeck(file);
  });

  function uploadDeck(file) {
    const form = new FormData();
    form.append('file', file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/decks?token=${encodeURIComponent(tokenFromPage())}`);
    upload.disabled = true;
    status.textContent = `正在上传 ${file.name}…`;
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.round((e.loaded / e.total) * 100);
      status.textContent = pct < 100 ? `正在上传 ${file.name}：${pct}%` : '上传完成，正在处理课件页面…';
    };
    xhr.onload = () => {
      upload.disabled = false;
      let body = {};
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 200 || xhr.status === 201) {
        status.textContent = `${body.name}：共 ${body.count} 页`;
        session.slideDeck(body.id, 1);
      } else {
        const message = body.message || `上传失败（${xhr.status}），请稍后重试。`;
        status.textContent = message;
        notify(message, { kind: 'error' });
      }
    };
    xhr.onerror = () => {
      upload.disabled = false;
      status.textContent = '上传失败：网络中断，请重试。';
      notify(status.textContent, { kind: 'error' });
    };
    xhr.send(form);
  }

  // A room that empties (a reload, the link lost) and opens again keeps its deck, page and
  // ink on the server (server/slides/resume.py): the `slides` sent on joining has them.
  return view;
}

function round(v) {
  return Math.round(v * 10000) / 10000;
}
