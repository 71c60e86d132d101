// 集体教研: a research meeting of up to 16 teachers. Everyone publishes camera and mic; the
// active speaker (from the received audio levels) is shown large; the host (the host school's
// teacher, or whoever the host handed over to: roomState.host) mutes, gives the floor to the next
// raised hand and may hand the role over (设为主持人); everyone edits the minutes (纪要).

import { openCameraAndMic } from './media.js';
import { localPreview, remoteElements, startPage } from './page.js';
import { standingLesson } from './standing.js';
import { TileGrid } from './tiles.js';
import { $, el, notify } from './ui.js';
import { MinutesEditor } from './meeting_minutes.js';
import { SpeakerDetector } from './meeting_speaker.js';

// A teacher's standing link (/teach/<id>) lands here while one of their meetings is on.
const standing = await standingLesson('meeting');
const session = startPage({
  role: 'member',
  liveText: '教研进行中',
  sessionOptions: { token: standing?.token },
});
standing?.leaveAtEnd(session);
const isHost = () => session.you != null && session.roomState.host === session.you.id;
const local = { camera: null, mic: null };
window.tongke.local = local;

// -- tiles: the active speaker in #focus, everyone else in #others ------------------------

const grid = new TileGrid($('#others'), {
  placeholder: '等待画面…',
  // Every other member's tile gets the host's buttons, shown only while this page hosts
  // (renderState): the host role can move to this page at any time.
  decorate(tile, participant) {
    if (participant.id === session.you?.id) return;
    tile.querySelector('.tile-actions').append(
      el('button', {
        class: 'btn host-only', 'data-action': 'mute', text: '静音', hidden: true,
        onclick: () => session.mute(participant.id, !session.roomState.muted.includes(participant.id)),
      }),
      el('button', {
        class: 'btn host-only', 'data-action': 'call_on', text: '请发言', hidden: true,
        onclick: () => session.callOn(session.roomState.called_on === participant.id ? null : participant.id),
      }),
    );
  },
});

remoteElements(session, { place: (remote, video) => grid.place(remote, video), removed: () => grid.refreshAll() });

let speaker = null;
function setFocus(id) {
  speaker = id;
  for (const [pid, tile] of grid.tiles) {
    const focused = pid === id;
    tile.classList.toggle('speaking', focused);
    const home = focused ? $('#focus') : $('#others');
    if (tile.parentElement !== home) home.append(tile);
  }
  document.body.dataset.speaker = id || '';
}

const detector = new SpeakerDetector(session, (id) => setFocus(id));
window.tongke.speaker = () => speaker;
window.tongke.levels = () => detector.levels;

function render() {
  const present = new Set();
  for (const p of session.participants.values()) {
    if (p.role === 'observer') continue;
    present.add(p.id);
    grid.tile(p);
  }
  for (const id of [...grid.tiles.keys()]) if (!present.has(id) && id !== session.you?.id) grid.remove(id);
  renderState();
}

const nameOf = (id) => (id === session.you?.id ? `${session.you.name}（我）` : session.participants.get(id)?.name || id);

// The member list: everyone present, who hosts, and for the host 设为主持人 beside the others.
function renderMembers() {
  const { host } = session.roomState;
  const hosting = isHost();
  const people = [session.you, ...session.participants.values()]
    .filter((p) => p && p.role !== 'observer' && p.role !== 'classroom');
  $('#members').replaceChildren(...people.map((p) => el('li', { dataset: { participant: p.id } },
    el('span', { class: 'member-name', text: nameOf(p.id) }),
    p.id === host ? el('span', { class: 'badge badge-host', text: '主持人' }) : null,
    hosting && p.id !== host ? el('button', {
      class: 'btn', 'data-action': 'host', text: '设为主持人',
      onclick: () => session.handOver(p.id),
    }) : null)));
  $('#host-line').textContent = host ? `主持人：${nameOf(host)}` : '暂无主持人';
}

function renderState() {
  const { called_on: calledOn, hands, muted, host } = session.roomState;
  const hosting = isHost();
  document.body.dataset.host = host || '';
  for (const [id, tile] of grid.tiles) {
    const badges = [];
    if (host === id) badges.push(['badge-host', '主持人']);
    if (calledOn === id) badges.push(['badge-speaking', '主持人请发言']);
    if (hands.includes(id)) badges.push(['badge-hand', `举手 ${hands.indexOf(id) + 1}`]);
    if (muted.includes(id)) badges.push(['badge-muted', '已静音']);
    grid.badges(id, badges);
    const mute = tile.querySelector('[data-action=mute]');
    if (mute) mute.textContent = muted.includes(id) ? '取消静音' : '静音';
    for (const button of tile.querySelectorAll('.host-only')) button.hidden = !hosting;
  }
  renderMembers();
  const queue = $('#queue');
  queue.replaceChildren(...hands.map((id) => el('li', { dataset: { participant: id },
    text: session.participants.get(id)?.name || id })));
  $('#queue-empty').hidden = hands.length > 0;
  const me = session.you?.id;
  const raised = hands.includes(me);
  $('#hand').textContent = raised ? '放下手' : '举手发言';
  $('#hand').dataset.raised = raised ? 'yes' : 'no';
  $('#hand').hidden = hosting;
  $('#next-speaker').hidden = !hosting;
  $('#next-speaker').disabled = hands.length === 0;
  if (calledOn) setFocus(calledOn); // the host gave the floor: show that person large
}

session.on('participants', render);
session.on('roomstate', renderState);
let selfShown = false;
function showSelf() {
  const you = session.you;
  if (selfShown || !you || !local.camera) return;
  selfShown = true;
  grid.place({ participant: you.id, name: `${you.name}（我）`, role: you.role, kind: 'video', source: 'camera' },
    localPreview(local.camera, 'camera', session));
}

// Told when the role reaches this page later (handed over, or the host left); not on arrival.
let wasHost = null;
session.on('roomstate', () => {
  if (!session.you) return;
  if (wasHost === false && isHost()) notify('您现在是主持人：可以静音、请人发言和移交主持人。', { ms: 4000 });
  wasHost = isHost();
});

session.on('joined', () => {
  showSelf();
  minutes.start();
  render();
});
session.on('muted', ({ muted }) => {
  if (local.mic) local.mic.enabled = !muted;
  $('#mic-state').textContent = muted ? '主持人已将您静音' : '';
  $('#mic-toggle').disabled = muted || !local.mic;
});

$('#hand').addEventListener('click', () => session.hand(!session.roomState.hands.includes(session.you?.id)));
$('#next-speaker').addEventListener('click', () => {
  const [next] = session.roomState.hands;
  if (next) session.callOn(next);
});
$('#mic-toggle').addEventListener('click', () => {
  if (!local.mic) return;
  local.mic.enabled = !local.mic.enabled;
  $('#mic-toggle').textContent = local.mic.enabled ? '关闭麦克风' : '打开麦克风';
  $('#mic-state').textContent = local.mic.enabled ? '' : '麦克风已关闭，其他老师听不到您';
});

// -- minutes ------------------------------------------------------------------------------

const minutes = new MinutesEditor($('#minutes'), $('#minutes-state'), {
  room: () => session.room?.id,
  token: new URLSearchParams(location.search).get('token') || '',
  onProblem: (text) => notify(text, { kind: 'error' }),
});
window.tongke.minutes = minutes;

// -- what this member sends: a small camera (16 tiles) and the mic ------------------------

async function openDevices() {
  const { camera, mic, problems } = await openCameraAndMic({ width: 640, height: 360, frameRate: 15 });
  for (const text of problems) notify(text, { kind: 'error', ms: 0 });
  if (session.state === 'ended') {
    camera?.stop();
    mic?.stop();
    return;
  }
  const publish = {};
  if (camera) { local.camera = camera; publish.camera = camera; }
  if (mic) { local.mic = mic; publish.mic = mic; }
  session.setLocal(publish);
  $('#mic-toggle').disabled = !mic;
  showSelf();
}

session.on('ended', () => { for (const track of [local.camera, local.mic]) track?.stop(); });
if (session.start()) openDevices();
