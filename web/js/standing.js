// Standing links (/class/<id>?token=…, /teach/<id>?token=…): the page joins whatever the
// timetable has on now, with a short-lived token the server mints for that lesson's room;
// otherwise it shows a countdown to the next one (下一节 … 还有 mm:ss), and it leaves when the
// lesson ends. Times come from the server as seconds from its now (its clock decides).
//
//   const standing = await standingLesson('classroom');   // null: an ordinary link
//   const session = startPage({ sessionOptions: { token: standing?.token } });
//   standing?.leaveAtEnd(session);

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

function overlay() {
  let box = document.getElementById('standing');
  if (!box) {
    box = el('section', { id: 'standing', class: 'standing' },
      el('div', { class: 'standing-who' }),
      el('div', { class: 'standing-title' }),
      el('div', { class: 'standing-when' }),
      el('div', { class: 'standing-countdown' }));
    document.body.append(box);
  }
  return box;
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
    await countdown(who, answer.next);
  }
}
