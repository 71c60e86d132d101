// Silent inspection (巡课): sees the teacher and every class, publishes nothing, and nobody
// else sees it. Only the teacher is heard by default; each class can be listened to.

import { remoteElements, startPage } from './page.js';
import { SlideView, followSlides } from './slides.js';
import { TileGrid } from './tiles.js';
import { $, el, play } from './ui.js';

const session = startPage({ role: 'observer', liveText: '巡课中' });

const grid = new TileGrid($('#grid'), {
  decorate(tile, participant) {
    if (participant.role === 'teacher') return; // the teacher is always heard
    tile.querySelector('.tile-actions').append(el('button', {
      class: 'btn btn-listen', 'data-action': 'listen', text: '收听',
      onclick: (e) => {
        const on = tile.classList.toggle('listening');
        e.currentTarget.textContent = on ? '停止收听' : '收听';
        tile.querySelectorAll('video[data-kind=audio]').forEach((v) => {
          v.muted = !on;
          if (on) play(v);
        });
      },
    }));
  },
});

remoteElements(session, {
  place(remote, video) {
    if (remote.kind === 'audio' && remote.role !== 'teacher') {
      // Many classes at once is noise: a class is heard only when asked for.
      video.muted = !grid.tile({ id: remote.participant, name: remote.name, role: remote.role })
        .classList.contains('listening');
    }
    grid.place(remote, video);
    order();
  },
  removed: () => grid.refreshAll(),
});

// The teacher first, then the classes by name.
function order() {
  const tiles = [...grid.tiles.values()];
  tiles.sort((a, b) => rank(a) - rank(b) || name(a).localeCompare(name(b), 'zh-CN'));
  for (const tile of tiles) grid.container.append(tile);
}
const rank = (tile) => (tile.classList.contains('role-teacher') ? 0 : 1);
const name = (tile) => tile.querySelector('.tile-name').textContent;

session.on('participants', ({ participants }) => {
  const present = new Set(participants.map((p) => p.id));
  for (const p of participants) grid.tile(p);
  for (const id of [...grid.tiles.keys()]) if (!present.has(id)) grid.remove(id);
  order();
  renderState();
  $('#counts').textContent = `${participants.filter((p) => p.role !== 'teacher').length} 个班级在线`;
});

function renderState() {
  const { called_on: calledOn, hands, muted } = session.roomState;
  for (const id of grid.tiles.keys()) {
    const list = [];
    if (calledOn === id) list.push(['badge-speaking', '正在发言']);
    if (hands.includes(id)) list.push(['badge-hand', '举手']);
    if (muted.includes(id)) list.push(['badge-muted', '已静音']);
    grid.badges(id, list);
  }
}
session.on('roomstate', renderState);

// The teacher's deck, as the classrooms see it.
const slides = new SlideView($('#observer-slides'), {
  prefetch: false,
  onChange: (view) => { $('#observer-slides').hidden = !view.active; },
});
followSlides(session, slides);
window.tongke.slides = slides;

session.start();
