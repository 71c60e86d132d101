// A grid of participant tiles (teacher's view of the classes, the observer's overview):
// one tile per participant holding its video, hidden audio, name, badges and buttons.

import { el } from './ui.js';

export class TileGrid {
  constructor(container, { placeholder = '等待画面…', decorate = () => {} } = {}) {
    this.container = container;
    this.placeholder = placeholder;
    this.decorate = decorate; // (tile, participant) -> add buttons once, at creation
    this.tiles = new Map(); // participant id -> tile element
  }

  tile(participant) {
    let tile = this.tiles.get(participant.id);
    if (tile) return tile;
    tile = el(
      'div',
      { class: `tile role-${participant.role || 'unknown'}`, dataset: { participant: participant.id } },
      el('div', { class: 'tile-media' }, el('div', { class: 'tile-placeholder', text: this.placeholder })),
      el('div', { class: 'tile-bar' },
        el('span', { class: 'tile-name', text: participant.name || participant.id }),
        el('span', { class: 'tile-badges' })),
      el('div', { class: 'tile-actions' }),
    );
    this.tiles.set(participant.id, tile);
    this.decorate(tile, participant);
    this.container.append(tile);
    return tile;
  }

  // Put a media element of a participant into its tile (video shown, audio hidden).
  place(remote, element) {
    const tile = this.tile({ id: remote.participant, name: remote.name, role: remote.role });
    const media = tile.querySelector('.tile-media');
    if (remote.kind === 'video') {
      // The screen goes first: on a tile with both, slides matter more than the face.
      if (remote.source === 'screen') media.prepend(element);
      else media.append(element);
    } else {
      tile.append(element);
    }
    this.refresh(tile);
  }

  refresh(tile) {
    const hasVideo = tile.querySelector('.tile-media video') != null;
    tile.querySelector('.tile-placeholder').hidden = hasVideo;
  }

  refreshAll() {
    for (const tile of this.tiles.values()) this.refresh(tile);
  }

  remove(participantId) {
    const tile = this.tiles.get(participantId);
    if (tile) {
      tile.querySelectorAll('video').forEach((v) => { v.srcObject = null; });
      tile.remove();
      this.tiles.delete(participantId);
    }
  }

  // Badges like 举手 / 已静音 / 发言中, from a list of [className, text] pairs.
  badges(participantId, list) {
    const tile = this.tiles.get(participantId);
    if (!tile) return;
    const box = tile.querySelector('.tile-badges');
    box.replaceChildren(...list.map(([cls, text]) => el('span', { class: `badge ${cls}`, text })));
    tile.classList.toggle('hand-up', list.some(([cls]) => cls === 'badge-hand'));
    tile.classList.toggle('speaking', list.some(([cls]) => cls === 'badge-speaking'));
  }
}
