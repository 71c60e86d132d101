// 课堂录像: the consortium's library of recorded lessons (search by subject, grade, teacher,
// date) and the player: the teacher's video, the slide page and ink shown at that moment,
// and timestamped review comments (听课评课). The server decides who sees and who may comment.

import { drawInk, pageImage, slideStateAt } from './replay_slides.js';

const SUBJECTS = ['语文', '数学', '英语', '物理', '化学', '生物', '历史', '地理', '道德与法治', '科学',
  '音乐', '美术', '体育', '信息技术'];
const GRADES = ['一年级', '二年级', '三年级', '四年级', '五年级', '六年级', '七年级', '八年级', '九年级',
  '高一', '高二', '高三'];

const params = new URLSearchParams(location.search);
const token = params.get('token') || '';
const $ = (sel) => document.querySelector(sel);

function api(path, options = {}) {
  const sep = path.includes('?') ? '&' : '?';
  return fetch(`${path}${sep}token=${encodeURIComponent(token)}`, options).then(async (r) => {
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw Object.assign(new Error(body.message || '读取失败'), body);
    return body;
  });
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function banner(state, detail) {
  $('#banner').dataset.state = state;
  $('#banner-detail').textContent = detail;
}

function link(id) {
  return `/replay?token=${encodeURIComponent(token)}&id=${encodeURIComponent(id)}`;
}

// -- library ---------------------------------------------------------------------------------

async function showLibrary() {
  $('#library').hidden = false;
  const form = $('#search');
  for (const [name, values] of [['subject', SUBJECTS], ['grade', GRADES]]) {
    for (const v of values) form.elements[name].append(new Option(v, v));
  }
  for (const name of ['subject', 'grade', 'teacher', 'date']) {
    if (params.get(name)) form.elements[name].value = params.get(name);
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    search();
  });
  await search();
}

async function search() {
  const form = $('#search');
  const query = new URLSearchParams();
  for (const name of ['subject', 'grade', 'teacher', 'date']) {
    const v = form.elements[name].value.trim();
    if (v) query.set(name, v);
  }
  let found;
  try {
    found = await api(`/api/recordings?${query}`);
  } catch (e) {
    banner('ended', e.message);
    return;
  }
  banner('live', `共 ${found.length} 节录像`);
  const body = $('#results tbody');
  body.replaceChildren();
  for (const r of found) {
    const row = body.insertRow();
    row.dataset.id = r.id;
    for (const text of [r.date, r.title, r.teacher, r.campus_name || r.campus, r.subject, r.grade,
      r.state === 'recording' ? '录制中' : clock(r.duration)]) {
      row.insertCell().textContent = text || '—';
    }
    const a = document.createElement('a');
    a.className = 'btn watch';
    a.textContent = '观看';
    a.href = link(r.id);
    row.insertCell().append(a);
  }
  $('#results').hidden = !found.length;
  $('#empty').hidden = !!found.length;
}

// -- player ----------------------------------------------------------------------------------

async function showPlayer(id) {
  $('#player').hidden = false;
  $('#back').href = `/replay?token=${encodeURIComponent(token)}`;
  let rec;
  try {
    rec = await api(`/api/recordings/${encodeURIComponent(id)}`);
  } catch (e) {
    banner('ended', e.message);
    return;
  }
  document.title = `${rec.title} · 课堂录像 · 同课`;
  $('#title').textContent = rec.title;
  const when = new Date(rec.started_at * 1000).toLocaleString('zh-CN');
  $('#meta-line').textContent = [rec.teacher, rec.campus, rec.subject, rec.grade, when,
    rec.state === 'interrupted' ? '（录制中断，已保存到中断前）' : ''].filter(Boolean).join(' · ');
  banner('live', '点击播放；课件随视频同步翻页');
  const events = [...rec.slide_events].sort((a, b) => a.t - b.t);
  const video = $('#video');
  video.src = `/api/recordings/${encodeURIComponent(id)}/media?token=${encodeURIComponent(token)}`;
  $('#slide-none').hidden = events.length > 0;
  let shown = '';
  const update = () => {
    const unix = rec.media_start + video.currentTime;
    const s = slideStateAt(events, unix);
    const slide = $('#slide');
    slide.dataset.page = s.page ?? '';
    slide.dataset.deck = s.deck?.deck ?? '';
    const key = `${slide.dataset.deck}|${s.page}|${s.ink.length}`;
    if (key === shown) return;
    shown = key;
    const src = pageImage(s.deck, s.page);
    const img = $('#slide-image');
    img.hidden = !src;
    if (src && img.getAttribute('src') !== src) img.src = src;
    const caption = $('#slide-caption');
    caption.hidden = !s.page;
    const total = s.deck?.pages?.length || s.deck?.count || s.deck?.page_count;
    caption.textContent = s.page ? `第 ${s.page} 页${total ? ` / 共 ${total} 页` : ''}` : '';
    drawInk($('#ink'), s.ink);
  };
  for (const ev of ['timeupdate', 'seeked', 'loadedmetadata']) video.addEventListener(ev, update);
  const tick = () => {
    update();
    video.requestVideoFrameCallback(tick);
  };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(tick);
  update();
  video.addEventListener('error', () => banner('ended', '录像文件无法播放，请联系教务。'));
  window.tongkeReplay = {
    recording: rec,
    get state() {
      const slide = $('#slide');
      return { time: video.currentTime, page: slide.dataset.page, deck: slide.dataset.deck };
    },
  };
  await loadComments(id, video);
  if (rec.may_comment) setUpCommenting(id, video);
}

async function loadComments(id, video) {
  const list = $('#comments');
  const comments = await api(`/api/recordings/${encodeURIComponent(id)}/comments`).catch(() => []);
  list.replaceChildren();
  for (const c of comments) {
    const li = document.createElement('li');
    li.dataset.t = c.t;
    const at = document.createElement('button');
    at.className = 'comment-time';
    at.textContent = clock(c.t);
    at.addEventListener('click', () => { video.currentTime = c.t; });
    const who = document.createElement('strong');
    who.textContent = `${c.author}${c.campus ? `（${c.campus}）` : ''}：`;
    const text = document.createElement('span');
    text.className = 'comment-text';
    text.textContent = c.text;
    li.append(at, who, text);
    list.append(li);
  }
  if (!comments.length) {
    const li = document.createElement('li');
    li.className = 'placeholder';
    li.textContent = '还没有评语。';
    list.append(li);
  }
}

function setUpCommenting(id, video) {
  const form = $('#comment-form');
  form.hidden = false;
  video.addEventListener('timeupdate', () => { $('#comment-at').textContent = clock(video.currentTime); });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = form.elements.text.value.trim();
    if (!text) return;
    try {
      await api(`/api/recordings/${encodeURIComponent(id)}/comments`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ t: Math.round(video.currentTime * 10) / 10, text }),
      });
      form.elements.text.value = '';
      await loadComments(id, video);
    } catch (e) {
      banner('ended', e.message);
    }
  });
}

if (!token) banner('ended', '链接无效：缺少访问凭证，请向教务索取录像链接。');
else if (params.get('id')) showPlayer(params.get('id'));
else showLibrary();
