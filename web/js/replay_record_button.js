// The teacher page's 录像 button: start and stop recording this lesson, show that it is being
// recorded, and surface the recorder's warnings (disk low, disk full) as notices. Talks to
// /api/recording/ROOM with the page's own token; the server decides who may.

import { el, notify } from './ui.js';

const POLL_MS = 5000;
const RECENT_S = 60;

function tokenRoom(token) {
  try {
    const payload = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(decodeURIComponent(escape(atob(payload)))).room || null;
  } catch {
    return null;
  }
}

export function addRecordButton(container) {
  const token = new URLSearchParams(location.search).get('token') || '';
  const room = tokenRoom(token);
  if (!container || !room) return null;
  const url = (path = '') => `/api/recording/${encodeURIComponent(room)}${path}?token=${encodeURIComponent(token)}`;
  const button = el('button', { id: 'record-toggle', class: 'btn btn-big', type: 'button' }, '开始录像');
  container.append(button);
  let recording = false;
  let seen = null; // server time up to which warnings were shown
  const show = (on) => {
    recording = on;
    button.textContent = on ? '● 录像中（点击停止）' : '开始录像';
    button.classList.toggle('btn-warn', on);
    button.dataset.recording = on ? 'yes' : 'no';
  };
  const poll = async () => {
    try {
      const r = await fetch(url());
      if (!r.ok) return;
      const status = await r.json();
      show(status.recording);
      // On the first look, what was said while the page opened (e.g. refused at arrival).
      if (seen === null) seen = status.now - RECENT_S;
      const fresh = status.warnings.filter((w) => w.t > seen);
      for (const w of fresh) notify(w.message, { kind: 'error', ms: 0 });
      seen = Math.max(seen, ...fresh.map((w) => w.t));
    } catch {
      // the page's banner already says when the server is unreachable
    }
  };
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const r = await fetch(url(recording ? '/stop' : '/start'), { method: 'POST' });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) notify(body.message || '录像操作失败。', { kind: 'error' });
      else notify(recording ? '录像已停止并保存。' : '开始录像。');
    } finally {
      button.disabled = false;
      await poll();
    }
  });
  poll();
  const timer = setInterval(poll, POLL_MS);
  window.addEventListener('pagehide', () => clearInterval(timer));
  return button;
}
