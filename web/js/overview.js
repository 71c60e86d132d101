// Staff overview (教务总览): every live room, every participant, the link health the server
// measures for each (good / weak / poor, estimate, loss, RTT, the layer it had to pick).
// Needs an observer token; one for room "*" sees every room.

const LEVEL = { good: ['good', '良好'], weak: ['fair', '一般'], poor: ['poor', '较差'] };
const ROLE = { teacher: '主讲教师', classroom: '接收课堂', observer: '巡课', member: '教研成员' };
const LAYER = { h: '高清', m: '标清', l: '流畅' };
const EVERY_MS = 2000;

const token = new URLSearchParams(location.search).get('token') || '';
const banner = document.getElementById('banner');
// The same staff token opens the timetable (统一课表).
document.getElementById('timetable-link').href = `/timetable?token=${encodeURIComponent(token)}`;

function setBanner(state, text, detail) {
  banner.dataset.state = state;
  banner.querySelector('.banner-state').textContent = text;
  banner.querySelector('.banner-detail').textContent = detail;
}

function cell(row, text) {
  const td = row.insertCell();
  td.textContent = text;
  return td;
}

function healthCell(row, link) {
  const span = document.createElement('span');
  span.className = 'health';
  const [level, text] = link ? LEVEL[link.quality] || ['', '—'] : ['', '等待数据'];
  span.dataset.level = level;
  span.textContent = text;
  row.insertCell().append(span);
}

function layersText(link) {
  const layers = Object.values(link?.layers || {});
  if (!layers.length) return '—';
  return layers.map((l) => (l ? LAYER[l] || l : '暂停')).join(' / ');
}

function renderRoom(room) {
  const section = document.createElement('section');
  section.className = 'room';
  section.dataset.room = room.id;
  const title = document.createElement('h2');
  title.textContent = `${room.title}（${room.participants.length} 方在线）`;
  const table = document.createElement('table');
  const head = table.createTHead().insertRow();
  for (const h of ['名称', '身份', '网络', '下行估计', '丢包', '往返时延', '当前画质']) {
    const th = document.createElement('th');
    th.textContent = h;
    head.append(th);
  }
  const body = table.createTBody();
  for (const p of room.participants) {
    const row = body.insertRow();
    row.dataset.participant = p.id;
    if (!p.visible) row.className = 'unseen';
    const link = p.link;
    cell(row, p.name);
    cell(row, ROLE[p.role] || p.role);
    healthCell(row, link);
    cell(row, link ? `${link.estimate_kbps} kbps` : '—');
    cell(row, link ? `${link.loss_pct}%` : '—');
    cell(row, link && link.rtt_ms != null ? `${link.rtt_ms} ms` : '—');
    cell(row, layersText(link));
  }
  section.append(title, table);
  return section;
}

async function refresh() {
  try {
    const r = await fetch(`/api/rooms?token=${encodeURIComponent(token)}`, { cache: 'no-store' });
    const body = await r.json();
    if (!r.ok) {
      setBanner('ended', '无法查看', body.message || '链接无效');
      return false;
    }
    document.getElementById('rooms').replaceChildren(...body.map(renderRoom));
    document.getElementById('empty').hidden = body.length > 0;
    const time = new Date().toLocaleTimeString('zh-CN');
    setBanner('live', '实时', `${body.length} 个课堂在线 · 更新于 ${time}`);
  } catch {
    setBanner('reconnecting', '连接中断', '正在重试…');
  }
  return true;
}

async function loop() {
  if (await refresh()) setTimeout(loop, EVERY_MS);
}

window.tongke = { refresh };
loop();
