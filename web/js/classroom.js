// A remote classroom's big display: the teacher (and slides) full screen, the class called
// on, the class's own small uplink, mute / hand / full screen, link health.

import { watchHealth } from './health.js';
import { openCameraAndMic } from './media.js';
import { localPreview, remoteElements, startPage } from './page.js';
import { standingLesson } from './standing.js';
import { SlideView, followSlides } from './slides.js';
import { $, notify, play } from './ui.js';

// A standing link (/class/<id>) waits for the timetable's lesson and joins with its token.
const standing = await standingLesson('classroom');
const session = startPage({
  role: 'classroom',
  liveText: '直播中',
  sessionOptions: {
    token: standing?.token,
    // The uplink is small on purpose: rural links are thin, and the teacher sees it as a
    // thumbnail.
    sendEncodings: { camera: [{ maxBitrate: 250000, maxFramerate: 15 }] },
  },
});
standing?.leaveAtEnd(session);

const local = { camera: null, mic: null };
const view = {
  teacherCamera: null, // RemoteTrack + element of each role on the stage
  screen: null,
  calledOn: null,
  health: null,
  selfMuted: false,
  forcedMute: false,
};
window.tongke.local = local;
window.tongke.view = view;

// The teacher's deck: pages as sharp images fetched once, ink and pointer drawn over them.
const slides = new SlideView($('#slide-stage'), {
  token: () => session.token, // prefetched pages are paced beside this lesson
  onChange: () => layout(),
});
followSlides(session, slides);
window.tongke.slides = slides;

// -- the stage -----------------------------------------------------------------------------

remoteElements(session, {
  place(remote, video) {
    if (remote.kind === 'audio') {
      $('#audio-sinks').append(video);
      return;
    }
    if (remote.role === 'teacher') {
      view[remote.source === 'screen' ? 'screen' : 'teacherCamera'] = { remote, video };
    } else {
      view.calledOn = { remote, video };
    }
    layout();
  },
  removed(remote) {
    for (const key of ['teacherCamera', 'screen', 'calledOn']) {
      if (view[key]?.remote === remote) view[key] = null;
    }
    layout();
  },
});

// A shared screen takes the stage, else the teacher's deck (the page beside the teacher's
// face); the teacher's face moves to the corner.
function layout() {
  const main = $('#main-view');
  const pip = $('#pip');
  const deck = !view.screen && slides.active;
  let [big, small] = [view.teacherCamera, null];
  if (view.screen) [big, small] = [view.screen, view.teacherCamera];
  else if (deck) [big, small] = [null, view.teacherCamera];
  moveInto(main, big?.video);
  moveInto(pip, small?.video);
  pip.hidden = !small;
  $('#main-placeholder').hidden = !!big || deck;
  $('#slide-stage').hidden = !deck;
  $('#stage').classList.toggle('with-slides', deck);
  if (deck) slides.fit();
  const called = $('#called-on');
  moveInto(called.querySelector('.slot'), view.calledOn?.video);
  called.hidden = !view.calledOn;
  if (view.calledOn) $('#called-on-name').textContent = view.calledOn.remote.name;
}

function moveInto(slot, video) {
  for (const old of slot.querySelectorAll('video')) if (old !== video) old.remove();
  if (video && video.parentElement !== slot) {
    slot.append(video);
    play(video); // moving an element pauses it
  }
}

// -- room state: called on, hands, teacher's mute ------------------------------------------

function renderRoomState() {
  const me = session.you?.id;
  if (!me) return;
  const { called_on: calledOn, hands, muted } = session.roomState;
  const raised = hands.includes(me);
  const hand = $('#hand-btn');
  hand.textContent = raised ? '放下手' : '举手';
  hand.classList.toggle('btn-active', raised);
  $('#speaking').hidden = calledOn !== me;
  setForcedMute(muted.includes(me));
}

let wasCalledOn = false;
session.on('roomstate', (state) => {
  const now = state.called_on != null && state.called_on === session.you?.id;
  if (now && !wasCalledOn) notify('老师请本班发言，请对着麦克风说话。', { kind: 'good' });
  wasCalledOn = now;
  renderRoomState();
});
session.on('joined', renderRoomState);
session.on('muted', ({ muted }) => {
  setForcedMute(muted);
  notify(muted ? '老师已将本班静音。' : '老师已取消本班静音。');
});

$('#hand-btn').addEventListener('click', () => {
  const me = session.you?.id;
  session.hand(!(me && session.roomState.hands.includes(me)));
});

// -- microphone: the class mutes itself, the teacher can mute it too -----------------------

function setForcedMute(forced) {
  view.forcedMute = forced;
  applyMute();
}

function applyMute() {
  const muted = view.selfMuted || view.forcedMute;
  if (local.mic) local.mic.enabled = !muted;
  const button = $('#mute-btn');
  button.disabled = !local.mic || view.forcedMute;
  if (!local.mic) button.textContent = '没有麦克风';
  else if (view.forcedMute) button.textContent = '老师已静音本班';
  else button.textContent = view.selfMuted ? '取消静音' : '静音';
  button.classList.toggle('btn-warn', muted);
  $('#self-view').classList.toggle('muted', muted);
}

$('#mute-btn').addEventListener('click', () => {
  view.selfMuted = !view.selfMuted;
  applyMute();
});

// -- full screen for the classroom display ------------------------------------------------

const fullButton = $('#fullscreen-btn');
fullButton.addEventListener('click', () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch(() => notify('此浏览器不支持全屏，请按 F11。'));
});
document.addEventListener('fullscreenchange', () => {
  fullButton.textContent = document.fullscreenElement ? '退出全屏' : '全屏';
});

// -- link health ---------------------------------------------------------------------------

watchHealth(session, (h) => {
  view.health = h;
  const box = $('#health');
  box.dataset.level = h.level;
  box.textContent = `网络：${h.text}`;
  box.title = describeHealth(h);
}, { mainVideo: () => view.teacherCamera?.remote }); // a still slide has few frames: not a sign

function describeHealth({ loss, rtt, jitter, fps }) {
  const parts = [];
  if (loss != null) parts.push(`丢包 ${(loss * 100).toFixed(1)}%`);
  if (rtt != null) parts.push(`延迟 ${Math.round(rtt * 1000)} 毫秒`);
  if (jitter != null) parts.push(`抖动 ${Math.round(jitter * 1000)} 毫秒`);
  if (fps != null) parts.push(`画面 ${Math.round(fps)} 帧/秒`);
  return parts.join('，');
}

// -- the class's own uplink ----------------------------------------------------------------

async function openDevices() {
  const { camera, mic, problems } = await openCameraAndMic({ width: 320, height: 180, frameRate: 15 });
  for (const text of problems) notify(text, { kind: 'error', ms: 0 });
  if (session.state === 'ended') { // ended while the browser asked for permission
    camera?.stop();
    mic?.stop();
    return;
  }
  if (camera) {
    local.camera = camera;
    $('#self-view').append(localPreview(camera, 'camera', session));
  }
  local.mic = mic;
  applyMute(); // before publishing: a class muted by the teacher stays silent
  session.setLocal({ camera, mic });
  $('#self-view').hidden = !camera;
}

layout();
applyMute();
// Ended (bad link, opened elsewhere, lesson over): free the camera for whoever needs it.
session.on('ended', () => {
  for (const track of [local.camera, local.mic]) track?.stop();
});

if (session.start()) openDevices(); // no devices for a link that cannot work
