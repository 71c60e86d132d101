// 课前准备课件: on a teacher's standing page, while it counts down, the teacher's coming lessons
// with the deck prepared for each; choose a file (uploaded like any deck) or remove it. The
// lesson's room opens on that deck at page 1, and the classrooms fetch it while they wait.
//
//   setupLessonDecks(overlay(), tokenFromPage());

import { ACCEPT } from './teacher_slides.js';
import { el, notify } from './ui.js';

const WEEKDAYS = ['日', '一', '二', '三', '四', '五', '六'];

function when(lesson) {
  // the lesson's own wall clock (Asia/Shanghai, as the server wrote it)
  const [date, time] = lesson.start.split('T');
  const day = new Date(`${date}T00:00:00Z`);
  return `${day.getUTCMonth() + 1}月${day.getUTCDate()}日 星期${WEEKDAYS[day.getUTCDay()]} ${time.slice(0, 5)}`;
}

async function answer(response) {
  let body = {};
  try { body = await response.json(); } catch { /* not JSON */ }
  if (!response.ok) throw new Error(body.message || `请求失败（${response.status}），请稍后重试。`);
  return body;
}

export function setupLessonDecks(box, token) {
  const q = `token=${encodeURIComponent(token)}`;
  const list = el('ul', { id: 'lesson-decks-list', class: 'lesson-decks-list' });
  const status = el('p', { id: 'lesson-decks-status', class: 'lesson-decks-status', text: '正在载入您的课…' });
  const input = el('input', { id: 'lesson-deck-file', type: 'file', accept: ACCEPT, hidden: true });
  const panel = el('section', { id: 'lesson-decks', class: 'lesson-decks' },
    el('h2', { text: '课前准备课件' }),
    el('p', { class: 'lesson-decks-hint', text: '为下面的课选好课件：上课时直接打开第 1 页，各班提前下载，上课不再等待。' }),
    list, status, input);
  box.append(panel);
  let target = null; // the room the chosen file is for

  // The list again; the status line keeps what the last action said.
  async function load({ first = false } = {}) {
    try {
      const body = await answer(await fetch(`/api/lessons/upcoming?${q}`, { cache: 'no-store' }));
      render(body.lessons);
      if (!body.lessons.length) status.textContent = '近期没有您的同步课。';
      else if (first) status.textContent = '';
    } catch (err) {
      status.textContent = err.message;
    }
  }

  function render(lessons) {
    list.replaceChildren(...lessons.map((lesson) => {
      const deck = lesson.deck;
      return el('li', { class: 'lesson-deck', dataset: { room: lesson.room, deck: deck?.id || '' } },
        el('span', { class: 'lesson-deck-when', text: when(lesson) }),
        el('span', { class: 'lesson-deck-title', text: lesson.title }),
        el('span', { class: 'lesson-deck-name', text: deck ? `${deck.name}（${deck.count} 页）` : '未准备课件' }),
        el('button', {
          class: 'btn lesson-deck-choose', text: deck ? '更换课件' : '选择课件',
          onclick: () => { target = lesson.room; input.click(); },
        }),
        deck && el('button', { class: 'btn lesson-deck-remove', text: '取消', onclick: () => remove(lesson.room) }));
    }));
  }

  input.addEventListener('change', () => {
    const file = input.files[0];
    input.value = '';
    if (file && target) prepare(target, file);
  });

  async function prepare(room, file) {
    const buttons = list.querySelectorAll('button');
    for (const b of buttons) b.disabled = true;
    try {
      status.textContent = `正在上传 ${file.name}，并处理课件页面…`;
      const form = new FormData();
      form.append('file', file, file.name);
      const deck = await answer(await fetch(`/api/decks?${q}`, { method: 'POST', body: form }));
      await attach(room, deck.id);
      status.textContent = `已为这节课准备好 ${deck.name}（共 ${deck.count} 页）。`;
    } catch (err) {
      status.textContent = err.message;
      notify(err.message, { kind: 'error' });
    }
    await load();
  }

  async function attach(room, deckId) {
    await answer(await fetch(`/api/lessons/${encodeURIComponent(room)}/deck?${q}`, {
      method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ deck: deckId }),
    }));
  }

  async function remove(room) {
    try {
      await answer(await fetch(`/api/lessons/${encodeURIComponent(room)}/deck?${q}`, { method: 'DELETE' }));
      status.textContent = '已取消这节课的课件。';
    } catch (err) {
      status.textContent = err.message;
    }
    await load();
  }

  load({ first: true });
  return { reload: load, attach };
}
