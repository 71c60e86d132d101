// The meeting's minutes (纪要), edited by several people: the text is saved a moment after
// typing stops, naming the version it started from; the server refuses a save based on an
// older version (someone else saved first) and sends the current text, which is loaded.
// While nobody types here, the latest text is fetched every POLL_MS.

const POLL_MS = 2000;
const SAVE_AFTER_MS = 800;

export class MinutesEditor {
  constructor(textarea, stateLabel, { room, token, onProblem }) {
    this.textarea = textarea;
    this.stateLabel = stateLabel;
    this.room = room;
    this.token = token;
    this.onProblem = onProblem;
    this.version = 0;
    this.dirty = false;
    this._saveTimer = null;
    this._poll = null;
    textarea.disabled = true;
    textarea.addEventListener('input', () => {
      this.dirty = true;
      this._label('正在编辑…');
      clearTimeout(this._saveTimer);
      this._saveTimer = setTimeout(() => this.save(), SAVE_AFTER_MS);
    });
  }

  url() {
    return `/api/meetings/${encodeURIComponent(this.room())}/minutes?token=${encodeURIComponent(this.token)}`;
  }

  start() {
    if (this._poll) return;
    this.load();
    this._poll = setInterval(() => { if (!this.dirty) this.load(); }, POLL_MS);
  }

  _label(text) { this.stateLabel.textContent = text; }

  _show(m) {
    this.version = m.version;
    if (this.textarea.value !== m.text) this.textarea.value = m.text;
    this.textarea.dataset.version = String(m.version);
    this._label(m.updated_by ? `${m.updated_by} 最后修改` : '');
  }

  async load() {
    try {
      const r = await fetch(this.url());
      if (!r.ok) return;
      const m = await r.json();
      if (!this.dirty) this._show(m);
      this.textarea.disabled = false;
    } catch {
      // offline for a moment: the banner says so; try again at the next poll
    }
  }

  async save() {
    const text = this.textarea.value;
    let r;
    try {
      r = await fetch(this.url(), {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ text, version: this.version }),
      });
    } catch {
      this._label('保存失败，稍后重试');
      this._saveTimer = setTimeout(() => this.save(), POLL_MS);
      return;
    }
    const body = await r.json().catch(() => ({}));
    if (this.textarea.value !== text) return; // typed again meanwhile: that save follows
    this.dirty = false;
    if (r.ok) {
      this._show(body);
      this._label('已保存');
    } else if (r.status === 409) {
      this.onProblem(body.message);
      this._show(body.current);
    } else {
      this.onProblem(body.message || '纪要保存失败。');
    }
  }
}
