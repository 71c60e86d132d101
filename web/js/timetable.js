// 统一课表: the staff's timetable page. The week per campus / teacher / class, the matcher
// (greedy preview at once, then CP-SAT with its progress), unplaced items with reasons, locks
// (click a lesson), and the consortium's TOML with edits the server validates.
// Needs a staff token (an observer token for every room, "*").

import { $, el, notify } from './ui.js';

const token = new URLSearchParams(location.search).get('token') || '';
const DAYS = [1, 2, 3, 4, 5];
const POLL_MS = 300;
const KIND_TEXT = { sync: '同步课堂', local: '走教', meeting: '教研' };

const state = {
  consortium: null, // the overview of the chosen consortium
  job: null, // the running or last job
  week: null,
};
window.tongke = { role: 'timetable', get state() { return { ...state }; } };

class ApiError extends Error {
  constructor(body, status) {
    super(body.message || `请求失败 (${status})`);
    this.body = body;
    this.status = status;
  }
}

async function api(path, { method = 'GET', json, text } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (text !== undefined) {
    headers['Content-Type'] = 'application/toml; charset=utf-8';
    body = text;
  }
  const r = await fetch(path, { method, headers, body, cache: 'no-store' });
  const type = r.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await r.json() : await r.text();
  if (!r.ok) throw new ApiError(typeof data === 'object' ? data : { message: data }, r.status);
  return data;
}

const base = () => `/api/timetable/${encodeURIComponent(state.consortium.id)}`;

function banner(stateName, text, detail = '') {
  const b = $('#banner');
  b.dataset.state = stateName;
  $('.banner-state', b).textContent = text;
  if (detail) $('.banner-detail', b).textContent = detail;
}

function planText(plan) {
  if (!plan) return '—';
  const placed = `已排 ${plan.lessons} 节课、${plan.meetings} 次教研`;
  const missing = plan.unplaced ? `，未排 ${plan.unplaced} 项` : '';
  let how = '快速预排（贪心，未优化）';
  if (plan.proven_optimal) how = '已证明最优';
  else if (plan.status === 'FEASIBLE') how = '可行方案（未证明最优）';
  else if (plan.status && plan.status !== 'greedy') how = `预排（${plan.status}）`;
  return `${how} · ${placed}${missing}`;
}

function showPlan(plan) {
  const chip = $('#plan-status');
  chip.textContent = planText(plan);
  chip.dataset.optimal = plan?.proven_optimal ? 'yes' : 'no';
  chip.dataset.status = plan?.status || '';
}

// -- the view selector ---------------------------------------------------------------------

function fillViewIds() {
  const kind = $('#view-kind').value;
  const c = state.consortium;
  const campusName = (id) => c.campuses.find((k) => k.id === id)?.name || id;
  const options = {
    campus: c.campuses.map((k) => [k.id, k.name]),
    teacher: c.teachers.map((t) => [t.id, `${t.name}（${campusName(t.campus)}）`]),
    class: c.classes.map((k) => [k.id, k.name]),
  }[kind];
  const select = $('#view-id');
  const before = select.value;
  select.replaceChildren(...options.map(([value, text]) => el('option', { value, text })));
  if (options.some(([value]) => value === before)) select.value = before;
}

// -- the week grid -------------------------------------------------------------------------

function entryText(e) {
  if (e.kind === 'meeting') return `${e.members.map((m) => m.name).join('、')}（线上）`;
  const classes = e.classes.map((k) => k.name).join('、');
  return e.kind === 'local' ? `${e.teacher_name} 走教 · ${classes}` : `${e.teacher_name} → ${classes}`;
}

function entryElement(e) {
  const node = el('div', {
    class: `tt-entry tt-${e.kind}`,
    title: e.locked ? '已锁定：点击解除锁定' : '点击锁定在此时间',
    dataset: { item: e.item, day: String(e.day), at: String(e.at), locked: e.locked ? '1' : '0' },
    onclick: () => toggleLock(e),
  },
  el('div', { class: 'tt-entry-title', text: `${e.locked ? '［锁定］' : ''}${e.title}` }),
  el('div', { class: 'tt-entry-who', text: entryText(e) }),
  el('div', { class: 'tt-entry-time', text: `${KIND_TEXT[e.kind]} ${e.shown_start}–${e.shown_end}` }));
  return node;
}

function renderWeek(week) {
  state.week = week;
  const rows = [...new Set(week.periods.map((p) => p.index))].sort((a, b) => a - b);
  const label = (index) => {
    const p = week.periods.find((q) => q.index === index);
    return `第${index}节\n${p.start}`;
  };
  if (week.entries.some((e) => e.row === 0)) rows.push(0);
  const body = $('#week tbody');
  body.replaceChildren(...rows.map((index) => el('tr', { dataset: { row: String(index) } },
    el('th', { text: index ? label(index) : '其他时间' }),
    ...DAYS.map((day) => el('td', { dataset: { day: String(day) } },
      ...week.entries.filter((e) => e.day === day && e.row === index).map(entryElement))))));
  $('#week').dataset.entries = String(week.entries.length);
}

async function loadWeek() {
  const kind = $('#view-kind').value;
  const id = $('#view-id').value;
  if (!id) return;
  const params = new URLSearchParams({ [kind]: id });
  if (state.job?.state === 'running') params.set('job', state.job.id);
  const week = await api(`${base()}/week?${params}`);
  renderWeek(week);
  showPlan(week.plan);
}

// -- unplaced and locks --------------------------------------------------------------------

function renderOverview(c) {
  const unplaced = $('#unplaced');
  unplaced.replaceChildren(...c.unplaced.map((u) => el('li', { dataset: { item: u.item } },
    el('strong', { text: `${u.name}` }), ` 缺 ${u.missing} 项：${u.reason}`)));
  $('#unplaced-none').hidden = c.unplaced.length > 0;
  const locks = $('#locks');
  locks.replaceChildren(...c.locks.map((lk) => el('li', { dataset: { item: lk.item } },
    `${lk.name} · ${lk.when}`,
    lk.from === 'config' ? el('span', { class: 'tt-lock-config', text: '（写在配置中）' })
      : el('button', { class: 'btn btn-small', text: '解除', onclick: () => unlock(lk) }))));
  $('#locks-none').hidden = c.locks.length > 0;
}

async function loadOverview() {
  const c = await api(`/api/timetable/${encodeURIComponent(state.consortium?.id || $('#consortium').value)}`);
  state.consortium = c;
  $('#consortium-name').textContent = c.name;
  renderOverview(c);
  return c;
}

async function refresh() {
  await loadOverview();
  fillViewIds();
  await loadWeek();
}

async function toggleLock(e) {
  try {
    if (e.locked) {
      await unlock({ item: e.item, day: e.day, at: e.at, name: e.title });
      return;
    }
    await api(`${base()}/locks`, { method: 'POST', json: { item: e.item, day: e.day, at: e.at } });
    notify(`已锁定 ${e.title}`, { kind: 'good' });
    await refresh();
  } catch (err) {
    notify(err.message, { kind: 'error', ms: 10000 });
  }
}

async function unlock(lk) {
  try {
    const params = new URLSearchParams({ item: lk.item, day: lk.day, at: lk.at });
    await api(`${base()}/locks?${params}`, { method: 'DELETE' });
    notify(`已解除锁定 ${lk.name || lk.item}`);
    await refresh();
  } catch (err) {
    notify(err.message, { kind: 'error', ms: 10000 });
  }
}

// -- the matcher ---------------------------------------------------------------------------

function showProgress(job) {
  $('#progress').hidden = false;
  const g = job.greedy;
  $('#progress-greedy').textContent = `快速预排：已排 ${g.lessons} 节课、${g.meetings} 次教研，未排 ${g.unplaced} 项（${g.seconds} 秒）`;
  const found = job.progress.length;
  const last = job.progress[found - 1];
  const bar = $('#progress-bar');
  if (job.state === 'running') {
    const elapsed = job.elapsed_s;
    $('#progress-cpsat').textContent = `优化求解中（CP-SAT）：已找到 ${found} 个改进方案，${elapsed.toFixed(1)} 秒 / 上限 ${job.limit_s} 秒`;
    bar.value = Math.min(100, (100 * elapsed) / (job.limit_s || 10));
  } else if (job.state === 'done') {
    const r = job.result;
    $('#progress-cpsat').textContent = `优化完成：${r.proven_optimal ? '已证明最优' : '未证明最优（达到时间上限）'}，用时 ${r.seconds} 秒${last ? `，共 ${found} 个改进方案` : ''}${r.moved.length ? `；调整了 ${r.moved.join('、')}` : ''}`;
    bar.value = 100;
  } else {
    $('#progress-cpsat').textContent = job.error || '排课失败';
    bar.value = 0;
  }
  $('#progress').dataset.state = job.state;
}

// Shows a job's greedy preview at once, then CP-SAT's progress until it ends.
async function follow(job) {
  const button = $('#solve-btn');
  button.disabled = true;
  try {
    state.job = job;
    banner('live', '正在排课');
    showProgress(state.job);
    await loadWeek(); // the greedy preview
    while (state.job.state === 'running') {
      await new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
      state.job = await api(`${base()}/jobs/${state.job.id}`);
      showProgress(state.job);
    }
    banner(state.job.state === 'done' ? 'live' : 'ended', state.job.state === 'done' ? '排课完成' : '排课未采用');
    await refresh();
  } catch (err) {
    notify(err.message, { kind: 'error', ms: 10000 });
  } finally {
    button.disabled = false;
  }
}

async function solve() {
  try {
    await follow(await api(`${base()}/solve`, { method: 'POST' }));
  } catch (err) {
    notify(err.message, { kind: 'error', ms: 10000 });
  }
}

// -- the source ----------------------------------------------------------------------------

async function loadSource() {
  $('#source').value = await api(`${base()}/source`);
}

async function saveSource() {
  const status = $('#source-status');
  status.dataset.kind = '';
  status.textContent = '正在检查…';
  try {
    await api(`${base()}/source`, { method: 'PUT', text: $('#source').value });
    status.dataset.kind = 'good';
    status.textContent = '已保存，已重新预排。运行排课可进一步优化。';
    await refresh();
  } catch (err) {
    status.dataset.kind = 'error';
    status.textContent = `未保存（没有任何改动）：${err.message}`;
    const line = err.body?.line;
    if (line) selectLine($('#source'), line);
  }
}

function selectLine(area, line) {
  const lines = area.value.split('\n');
  const start = lines.slice(0, line - 1).reduce((n, l) => n + l.length + 1, 0);
  area.focus();
  area.setSelectionRange(start, start + (lines[line - 1]?.length || 0));
}

// -- start ---------------------------------------------------------------------------------

async function start() {
  if (!token) {
    banner('ended', '链接不完整', '请使用教务发给您的课表管理链接。');
    return;
  }
  try {
    const list = await api('/api/timetable');
    if (!list.length) {
      banner('ended', '没有课表', '服务器没有配置教联体课表。');
      return;
    }
    $('#consortium').replaceChildren(...list.map((c) => el('option', { value: c.id, text: c.name })));
    state.consortium = { id: list[0].id };
    await refresh();
    await loadSource();
    banner('live', '课表已载入');
    if (state.consortium.job) follow(state.consortium.job); // opened while the matcher runs
  } catch (err) {
    banner('ended', '无法读取课表', err.message);
  }
}

$('#consortium').addEventListener('change', async () => {
  state.consortium = { id: $('#consortium').value };
  await refresh().catch((err) => notify(err.message, { kind: 'error' }));
  await loadSource().catch(() => {});
});
$('#view-kind').addEventListener('change', () => {
  fillViewIds();
  loadWeek().catch((err) => notify(err.message, { kind: 'error' }));
});
$('#view-id').addEventListener('change', () => loadWeek().catch((err) => notify(err.message, { kind: 'error' })));
$('#solve-btn').addEventListener('click', solve);
$('#save-btn').addEventListener('click', saveSource);

start();
