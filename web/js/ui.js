// Small DOM helpers shared by the pages: media elements, the status banner, notices.

import { STATE_TEXT } from './signalling.js';

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

// Every media element is a <video> tagged with what it shows (tests and CSS rely on it):
// data-source = camera|screen|mic, data-participant = id. Audio plays through hidden ones.
export function mediaElement(track, { source, participant, local = false }) {
  const video = el('video', {
    autoplay: true,
    playsinline: true,
    class: track.kind === 'audio' ? 'audio-sink' : 'media',
    dataset: { source, participant, kind: track.kind, ...(local ? { local: '1' } : {}) },
  });
  // Local previews and video-only elements are muted so they may autoplay; our own
  // microphone must never play back (echo).
  video.muted = local || track.kind === 'video';
  video.srcObject = new MediaStream([track]);
  play(video);
  return video;
}

// Autoplay with sound needs a click in most browsers: offer one big button once.
const blocked = new Set();
export function play(media) {
  const p = media.play();
  if (!p) return;
  p.catch((err) => {
    if (err?.name !== 'NotAllowedError') return;
    blocked.add(media);
    showSoundButton();
  });
}

function showSoundButton() {
  if ($('#sound-unlock')) return;
  const button = el('button', { id: 'sound-unlock', class: 'sound-unlock', text: '点击这里开启声音' });
  button.addEventListener('click', () => {
    for (const media of blocked) media.play().catch(() => {});
    blocked.clear();
    button.remove();
  });
  document.body.append(button);
}

// The status banner: one big, coloured line for 连接中 / 直播中 / 重新连接中 / 已结束.
export function bindBanner(banner, session, liveText = STATE_TEXT.live) {
  const render = ({ state, message }) => {
    banner.dataset.state = state;
    const label = state === 'live' ? liveText : STATE_TEXT[state] || state;
    $('.banner-state', banner).textContent = label;
    $('.banner-detail', banner).textContent = message || DETAIL[state] || '';
    document.body.dataset.state = state;
  };
  session.on('state', render);
  render({ state: session.state, message: '' });
}

const DETAIL = {
  connecting: '正在进入课堂，请稍候…',
  reconnecting: '网络中断，正在自动重新连接，请不要关闭页面…',
  live: '',
  ended: '',
};

// Short-lived notices for errors and events ("老师请本班发言").
export function notify(text, { kind = 'info', ms = 6000 } = {}) {
  let box = $('#notices');
  if (!box) {
    box = el('div', { id: 'notices', class: 'notices', 'aria-live': 'polite' });
    document.body.append(box);
  }
  const note = el('div', { class: `notice notice-${kind}`, text });
  box.append(note);
  if (ms) setTimeout(() => note.remove(), ms);
  return note;
}
