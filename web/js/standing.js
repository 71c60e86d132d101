// Standing links (/class/<id>?token=…, /teach/<id>?token=…): the page joins whatever the
// timetable has on now, with a short-lived token the server mints for that lesson's room;
// otherwise it shows a countdown to the next one (下一节 … 还有 mm:ss), and it leaves when the
// lesson ends. Times come from the server as seconds from its now (its clock decides).
//
//   const standing = await standingLesson('classroom');   // null: an ordinary link
//   const session = startPage({ sessionOptions: { token: standing?.token } });
//   standing?.leaveAtEnd(session);
//
// While it counts down, the deck the teacher prepared for the next lesson is fetched into the
// browser's cache (deck_prefetch.js), so that the lesson starts on it without a download.

import { prefetchDeck } from './deck_prefetch.js';
import { tokenFromPage } from './signalling.js';
import { el } from './ui.js';

const STANDING_PATH = /^\/(class|teach)\/[^/]+$/;
const RETRY_MS = 10000; // the server could not be asked: try again
const REFRESH_MS = 5 * 60 * 1000; // re-ask now and then: the timetable may have changed
const ENDED_PAUSE_MS = 3000; // "本节课已结束" stays this long before the countdown returns

export function isStandingLink(loc = window.location) {
  return STANDING_PATH.test(loc.pathname);
}

export function formatCountdown(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const pad = (n) => String(n).padStart(2, '0');
  if (s >= 3600) return `${Math.floor(s / 3600)} 小时 ${pad(Math.floor((s % 3600) / 60))} 分`;
  return `${pad(Math.floor(s / 60))}:${pad(s % 60)}`;
}

const WEEKDAYS = ['日', '一', '二', '三', '四', '五', '六'];
function clockText(iso) {
  // The lesson's own wall clock (Asia/Shanghai, as the server wrote it), not the browser's.
  const [date, time] = iso.split('T');
  const day = new Date(`${date}T00:00:00Z`).getUTCDay();
  return `星期${WEEKDAYS[day]} ${time.slice(0, 5)}`;
}

async function askNow(token) {
  const r = await fetch(`/api/timetable/now?token=${encodeURIComponent(token)}`, { cache: 'no-store' });
  const body = await r.json();
  if (!r.ok) throw Object.assign(new Error(body.message || '链接无效'), { final: r.status < 500 });
  return body;
}

// The full-screen box the countdown is shown in (pages may add to it: lesson_decks.js).
export function overlay() {
  let box = document.getElementById('standing');
  if (!box) {
    box = el('section', { id: 'standing', class: 'standing' },
      el('div', { class: 'standing-who' }),
      el('div', { class: 'standing-title' }),
      el('div', { class: 'standing-when' }),
      el('div', { class: 'standing-countdown' }),
      el('div', { class: 'standing-deck', hidden: true }));
    document.body.append(box);
  }
  return box;
}

// The next lesson's deck into the cache while we wait: one job at a time, for the deck the
// latest answer names (the teacher may change it meanwhile). Its progress shows on the
// overlay, as #standing[data-deck=loading|ready|gone] for tests and support staff.
class DeckAhead {
  constructor() {
    this.id = '';
    this.job = null;
  }

  follow(deck) {
    if ((deck?.id || '') === this.id) return;
    this.stop();
    this.id = deck?.id || '';
    const box = overlay();
    const line = box.querySelector('.standing-deck');
    line.hidden = !deck;
    if (!deck) {
      delete box.dataset.deck;
      return;
    }
    box.dataset.deck = 'loading';
    line.textContent = `本节课件：${deck.name}（共 ${deck.count} 页），正在提前下载…`;
    const job = prefetchDeck(deck, {
      onProgress: ({ done, total }) => {
        if (this.job === job) line.textContent = `本节课件：${deck.name}，正在提前下载 ${Math.floor((done / total) * 100)}%`;
      },
    });
    this.job = job;
    job.done.then((result) => {
      if (this.job !== job || result === 'aborted') return;
      box.dataset.deck = result === 'done' ? 'ready' : 'gone';
      line.textContent = result === 'done'
        ? `本节课件已准备好：${deck.name}（共 ${deck.count} 页）`
        : `本节课件 ${deck.name} 已被删除，请联系老师。`;
    });
  }

  stop() {
    this.job?.abort(); // the lesson is on: its own page fetches what is still missing
    this.job = null;
  }
}

function show(parts) {
  const box = overlay();
  box.hidden = false;
  for (const [key, text] of Object.entries(parts)) box.querySelector(`.standing-${key}`).textContent = text;
  window.tongke = { ...(window.tongke || {}), standing: { ...parts, state: box.dataset.state } };
}

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// Counts down to the bell of `next` (or waits REFRESH_MS when nothing is planned); resolves
// when it is time to ask the server again: when the lesson opens (a little before its bell),
// or after REFRESH_MS.
async function countdown(who, next) {
  const box = overlay();
  box.dataset.state = next ? 'waiting' : 'none';
  const started = performance.now();
  const opens = next ? (next.opens_in_s + 1) * 1000 : REFRESH_MS; // +1 s: the server rounds
  const until = started + Math.min(opens, REFRESH_MS);
  for (;;) {
    const left = next ? next.starts_in_s - (performance.now() - started) / 1000 : 0;
    if (next) {
      show({ who, title: `下一节：${next.title}`, when: clockText(next.start), countdown: `还有 ${formatCountdown(left)}` });
    } else {
      show({ who, title: '本周课表中暂无安排', when: '', countdown: '' });
    }
    if (performance.now() >= until) return;
    await sleep(Math.min(1000, until - performance.now()));
  }
}

// `page`: this page's name (classroom, teacher, meeting); a lesson for another page reloads,
// and the server serves the right one.
export async function standingLesson(page, loc = window.location) {
  if (!isStandingLink(loc)) return null;
  const token = tokenFromPage(loc);
  document.body.classList.add('standing-link');
  const ahead = new DeckAhead();
  for (;;) {
    let answer;
    try {
      answer = await askNow(token);
    } catch (err) {
      overlay().dataset.state = 'error';
      show({ who: '', title: err.message, when: '', countdown: '' });
      if (err.final) return new Promise(() => {}); // a bad link stays explained
      await sleep(RETRY_MS);
      continue;
    }
    const who = answer.who.name;
    const now = answer.now;
    if (now) {
      ahead.stop();
      if (now.page !== page) { // a teacher's meeting needs the meeting page
        loc.reload();
        return new Promise(() => {});
      }
      overlay().hidden = true;
      overlay().dataset.state = 'joined';
      return {
        token: now.token,
        lesson: now,
        leaveAtEnd(session) {
          window.tongke.standing = { state: 'joined', lesson: now };
          setTimeout(async () => {
            session.leave();
            overlay().dataset.state = 'ended';
            show({ who, title: `${now.title} 已结束`, when: '', countdown: '' });
            await sleep(ENDED_PAUSE_MS);
            loc.reload(); // a fresh page: the countdown to the next lesson, or the next lesson
          }, now.ends_in_s * 1000);
        },
      };
    }
    ahead.follow(answer.next?.deck);
    await countdown(who, answer.next);
  }
}
