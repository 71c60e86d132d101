// The master teacher's page: publishes camera + mic (+ screen on demand), sees every class,
// calls on a class, mutes a class, sees raised hands.

import { watchHealth } from './health.js';
import { cameraLayers, openCameraAndMic, openScreen } from './media.js';
import { setupLessonDecks } from './lesson_decks.js';
import { localPreview, remoteElements, startPage } from './page.js';
import { tokenFromPage } from './signalling.js';
import { isStandingLink, overlay, standingLesson } from './standing.js';
import { addRecordButton } from './replay_record_button.js';
import { setupTeacherSlides } from './teacher_slides.js';
import { TileGrid } from './tiles.js';
import { $, el, notify } from './ui.js';

const isClass = (p) => p.role === 'classroom' || p.role === 'member';

// A standing link (/teach/<id>) waits for the timetable's lesson and joins with its token;
// meanwhile the teacher may prepare the decks of coming lessons (课前准备课件).
if (isStandingLink()) setupLessonDecks(overlay(), tokenFromPage());
const standing = await standingLesson('teacher');
const session = startPage({
  role: 'teacher',
  liveText: '直播中',
  sessionOptions: {
    token: standing?.token,
    // Headroom for 720p without starving the classes' uplinks on the school's own link.
    sendEncodings: { camera: [{ maxBitrate: 1500000 }], screen: [{ maxBitrate: 1200000 }] },
  },
});
standing?.leaveAtEnd(session);

// ?layers=3 sends the camera in three sizes (720p, 360p, 180p at 15 fps), so a slow classroom
// gets a small picture without the server re-encoding; the server answers with one REMB for
// all three. Not the default yet: that REMB ramps up at ~8%/s (aiortc's estimator), and while
// it does Chrome splits ~300 kbps three ways and the classrooms see the 360p layer at 3-7 fps
// for the first 10-15 s. With one layer the server makes 360p/180p itself.
const LAYER_COUNT = Number(new URLSearchParams(window.location.search).get('layers') || 1);

const local = { camera: null, mic: null, screen: null, layers: {} };
window.tongke.local = local;
addRecordButton($('.teacher-controls'));
// Slides as documents: sharp pages, a few bytes per page turn. Screen sharing stays for
// what is not a deck (a web page, a video).
window.tongke.slides = setupTeacherSlides(session, $('#slides-box'));

// -- the classes ---------------------------------------------------------------------------

const grid = new TileGrid($('#classes'), {
  placeholder: '等待该班画面…',
  decorate(tile, participant) {
    const actions = tile.querySelector('.tile-actions');
    actions.append(
      el('button', {
        class: 'btn btn-call', 'data-action': 'call_on', text: '点名发言',
        onclick: () => {
          const calledOn = session.roomState.called_on === participant.id;
          session.callOn(calledOn ? null : participant.id);
        },
      }),
      el('button', {
        class: 'btn btn-mute', 'data-action': 'mute', text: '静音',
        onclick: () => session.mute(participant.id, !session.roomState.muted.includes(participant.id)),
      }),
    );
  },
});

remoteElements(session, {
  place: (remote, video) => grid.place(remote, video),
  removed: () => grid.refreshAll(),
});

function renderClasses() {
  const present = new Set();
  for (const p of session.participants.values()) {
    if (!isClass(p)) continue;
    present.add(p.id);
    grid.tile(p);
  }
  for (const id of [...grid.tiles.keys()]) if (!present.has(id)) grid.remove(id);
  $('#class-count').textContent = present.size ? `${present.size} 个班级在线` : '还没有班级进入';
  $('#no-classes').hidden = present.size > 0;
  renderRoomState();
}

function renderRoomState() {
  const { called_on: calledOn, hands, muted } = session.roomState;
  for (const [id, tile] of grid.tiles) {
    const list = [];
    if (calledOn === id) list.push(['badge-speaking', '正在发言']);
    if (hands.includes(id)) list.push(['badge-hand', '举手']);
    if (muted.includes(id)) list.push(['badge-muted', '已静音']);
    grid.badges(id, list);
    tile.querySelector('[data-action=call_on]').textContent = calledOn === id ? '结束发言' : '点名发言';
    tile.querySelector('[data-action=mute]').textContent = muted.includes(id) ? '取消静音' : '静音';
  }
  const names = hands.map((id) => session.participants.get(id)?.name || id);
  $('#hands').hidden = names.length === 0;
  $('#hands-list').textContent = names.join('、');
  const speaker = calledOn && (session.participants.get(calledOn)?.name || calledOn);
  $('#end-call').hidden = !calledOn;
  $('#end-call').textContent = speaker ? `结束 ${speaker} 的发言` : '结束发言';
}

session.on('participants', renderClasses);
session.on('roomstate', renderRoomState);
$('#end-call').addEventListener('click', () => session.callOn(null));

// -- what the teacher sends ----------------------------------------------------------------

async function openDevices() {
  const { camera, mic, problems } = await openCameraAndMic({ width: 1280, height: 720, frameRate: 30 });
  for (const text of problems) notify(text, { kind: 'error', ms: 0 });
  if (session.state === 'ended') { // ended while the browser asked for permission
    camera?.stop();
    mic?.stop();
    return;
  }
  const publish = {};
  if (camera) {
    local.camera = camera;
    $('#self-camera').append(localPreview(camera, 'camera', session));
    $('#self-camera .placeholder').hidden = true;
    const { tracks, encodings } = await cameraLayers(camera, LAYER_COUNT);
    Object.assign(session.sendEncodings, encodings);
    local.layers = tracks;
    Object.assign(publish, tracks);
  }
  if (mic) {
    local.mic = mic;
    publish.mic = mic;
  }
  session.setLocal(publish);
  $('#mic-toggle').disabled = !mic;
}

const micButton = $('#mic-toggle');
micButton.addEventListener('click', () => {
  if (!local.mic) return;
  local.mic.enabled = !local.mic.enabled;
  micButton.textContent = local.mic.enabled ? '关闭麦克风' : '打开麦克风';
  micButton.classList.toggle('btn-warn', !local.mic.enabled);
  $('#mic-state').textContent = local.mic.enabled ? '' : '麦克风已关闭，学生听不到您';
});

const shareButton = $('#share-screen');
shareButton.addEventListener('click', async () => {
  if (local.screen) {
    stopScreen();
    return;
  }
  const { track, problem } = await openScreen();
  if (problem) notify(problem, { kind: 'error' });
  if (!track) return;
  local.screen = track;
  track.addEventListener('ended', stopScreen); // the browser's own "stop sharing" button
  const box = $('#self-screen');
  box.replaceChildren(localPreview(track, 'screen', session));
  box.hidden = false;
  shareButton.textContent = '停止共享';
  shareButton.classList.add('btn-warn');
  session.setLocal('screen', track);
});

function stopScreen() {
  if (!local.screen) return;
  local.screen.stop();
  local.screen = null;
  const box = $('#self-screen');
  box.querySelectorAll('video').forEach((v) => { v.srcObject = null; });
  box.replaceChildren();
  box.hidden = true;
  shareButton.textContent = '共享屏幕';
  shareButton.classList.remove('btn-warn');
  session.setLocal('screen', null);
}

// -- health --------------------------------------------------------------------------------

watchHealth(session, ({ level, text }) => {
  const h = $('#health');
  h.dataset.level = level;
  h.textContent = `网络：${text}`;
});

renderClasses();
// Ended (bad link, opened elsewhere, lesson over): free the camera for whoever needs it.
session.on('ended', () => {
  for (const track of [local.camera, local.mic, local.screen, ...Object.values(local.layers)]) track?.stop();
});

if (session.start()) openDevices(); // no devices for a link that cannot work
