// What every page does the same way: a session from the page's token, the banner, error
// notices, remote media elements, and `window.tongke` for tests and support staff.

import { Session } from './signalling.js';
import { $, bindBanner, mediaElement, notify } from './ui.js';

// Errors shown elsewhere: in the banner (waiting for the lesson) or in the notice that
// `ended` brings (a bad or expired link).
const QUIET_ERRORS = new Set(['unknown_room', 'bad_token', 'expired_token']);

export function startPage({ role, liveText, sessionOptions = {}, extra = {} }) {
  const session = new Session(sessionOptions);
  bindBanner($('#banner'), session, liveText);
  session.on('error', (e) => {
    if (!QUIET_ERRORS.has(e.code)) notify(e.message || '出现错误，请稍后重试。', { kind: 'error' });
  });
  session.on('ended', ({ message }) => notify(message, { kind: 'error', ms: 0 }));
  session.on('joined', ({ you, room }) => {
    const title = $('#room-title');
    if (title) title.textContent = room.title || room.id;
    const me = $('#my-name');
    if (me) me.textContent = you.name;
    document.title = `${room.title || room.id} · 同课`;
  });
  window.addEventListener('pagehide', () => session.leave());
  window.tongke = {
    role,
    session,
    get state() { return session.state; },
    get participants() { return [...session.participants.values()]; },
    get remote() { return [...session.remote.values()].map(describeRemote); },
    inboundStats: () => session.inboundStats(),
    ...extra,
  };
  return session;
}

function describeRemote(r) {
  return { mid: r.mid, participant: r.participant, name: r.name, role: r.role, source: r.source, kind: r.kind };
}

// Keeps one <video> per received track. `place(remote, element)` puts it on the page;
// `removed(remote)` lets the page tidy up its layout.
export function remoteElements(session, { place, removed = () => {} }) {
  const elements = new Map(); // mid -> element
  session.on('track', (remote) => {
    const video = mediaElement(remote.track, { source: remote.source, participant: remote.participant });
    video.dataset.name = remote.name;
    elements.set(remote.mid, video);
    place(remote, video);
  });
  session.on('trackremoved', (remote) => {
    const video = elements.get(remote.mid);
    if (video) {
      video.srcObject = null;
      video.remove();
      elements.delete(remote.mid);
    }
    removed(remote);
  });
  return elements;
}

// Local preview element, tagged like the remote ones (data-local="1").
export function localPreview(track, source, session) {
  const video = mediaElement(track, { source, participant: session.you?.id || 'local', local: true });
  session.on('joined', ({ you }) => { video.dataset.participant = you.id; });
  return video;
}
