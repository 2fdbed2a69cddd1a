/* お知らせの作成: 入力に合わせて届く人数を数え（/api/v1/news/recipients）、住民に届くメッセージを
 * LINE の見た目で表示する（/api/v1/news/preview を line-preview.js で描画）。配信中のレポートは
 * 数秒ごとに更新する（/api/v1/news/{id}/report）。JavaScript がなくても保存・操作はできる。 */
(() => {
  'use strict';

  const DELAY_MS = 400;
  const REPORT_EVERY_MS = 3000;
  const LIVE = new Set(['planning', 'sending', 'waiting']);

  async function call(url, method, body, csrf) {
    const res = await fetch(url, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
    const data = await res.json().catch(() => null);
    return { ok: res.ok, status: res.status, data };
  }

  function errorOf(result) {
    if (result.data && result.data.error) return result.data.error.message;
    return `確認できませんでした（HTTP ${result.status}）。`;
  }

  // ---------------------------------------------------------------- the compose form
  const form = document.getElementById('news-form');
  const previewEl = document.getElementById('news-preview');
  const problemEl = document.getElementById('preview-message');
  const countEl = document.getElementById('recipient-count');

  function showPreview(data) {
    if (!previewEl || !window.LinePreview) return;
    if (!data.ok) {
      problemEl.textContent = data.message;
      problemEl.hidden = false;
      return;
    }
    problemEl.hidden = true;
    window.LinePreview.renderChat(previewEl, data.messages, { accountName: 'ふるさと住民登録', onAction: () => {} });
  }

  function values(name) {
    const out = [];
    for (const el of form.querySelectorAll(`[name="${name}"]`)) {
      if (el.tagName === 'SELECT') out.push(...Array.from(el.selectedOptions, (o) => o.value));
      else if (el.checked) out.push(el.value);
    }
    return out;
  }

  function field(name) {
    const el = form.elements.namedItem(name);
    return el ? el.value : '';
  }

  function segment() {
    return {
      tiers: values('tiers'), types: values('types'), prefectures: values('prefectures'),
      regions: values('regions'), age_bands: values('age_bands'), topic: field('topic'),
    };
  }

  function content() {
    const kind = values('kind')[0] || 'text';
    const image = field('image_url').trim();
    const out = { kind, image_url: image || null };
    if (kind === 'text') return { ...out, text: field('text') };
    let flex = null;
    try {
      flex = JSON.parse(field('flex_json'));
    } catch (_e) {
      throw new Error('Flexメッセージ（JSON）を読み取れません。カンマ・かっこ・引用符をお確かめください。');
    }
    return { ...out, flex, alt_text: field('alt_text') };
  }

  function toggle() {
    const kind = values('kind')[0] || 'text';
    const schedule = values('schedule_kind')[0] || 'now';
    for (const el of form.querySelectorAll('[data-kind]')) el.hidden = el.dataset.kind !== kind;
    for (const el of form.querySelectorAll('[data-schedule]')) el.hidden = !el.dataset.schedule.split(' ').includes(schedule);
  }

  let countSeq = 0;
  async function count() {
    const mine = ++countSeq;
    const result = await call(form.dataset.countUrl, 'POST', segment(), form.dataset.csrf).catch(() => null);
    if (mine !== countSeq) return;
    countEl.textContent = result && result.ok ? String(result.data.count) : '—';
    countEl.title = result && !result.ok ? errorOf(result) : '';
  }

  let previewSeq = 0;
  async function preview() {
    const mine = ++previewSeq;
    let body;
    try {
      body = { title: field('title'), content: content(), topic: field('topic') };
    } catch (e) {
      showPreview({ ok: false, message: e.message });
      return;
    }
    const result = await call(form.dataset.previewUrl, 'POST', body, form.dataset.csrf).catch(() => null);
    if (mine !== previewSeq) return;
    if (!result) showPreview({ ok: false, message: '確認できませんでした（接続エラー）。' });
    else if (!result.ok) showPreview({ ok: false, message: errorOf(result) });
    else showPreview(result.data);
  }

  if (form) {
    let timer = null;
    const later = (fn) => { clearTimeout(timer); timer = setTimeout(fn, DELAY_MS); };
    form.addEventListener('input', (ev) => {
      const name = ev.target.name || '';
      toggle();
      if (['tiers', 'types', 'prefectures', 'regions', 'age_bands', 'topic'].includes(name)) count();
      if (!['tiers', 'types', 'prefectures', 'regions', 'age_bands', 'schedule_kind', 'at', 'every_months', 'until'].includes(name)) later(preview);
    });
    form.addEventListener('change', toggle);
    toggle();
  }

  let initial = null;
  try { initial = JSON.parse(document.getElementById('initial-preview').textContent); } catch (_e) { initial = null; }
  if (initial && initial.ok) showPreview(initial);

  // Buttons that cannot be undone ask first.
  for (const button of document.querySelectorAll('button[data-confirm]')) {
    button.addEventListener('click', (ev) => { if (!window.confirm(button.dataset.confirm)) ev.preventDefault(); });
  }

  // ---------------------------------------------------------------- the report while sending
  const report = document.getElementById('news-report');
  if (report && report.dataset.live === 'true') {
    const set = (name, text) => { for (const el of report.querySelectorAll(`[data-field="${name}"]`)) el.textContent = text; };
    const reasons = (name, counts, labels) => {
      const list = report.querySelector(`[data-field="${name}"]`);
      const entries = Object.entries(counts || {});
      const items = entries.length ? entries.map(([k, n]) => `${labels[k] || k}: ${n}人`) : ['なし'];
      list.replaceChildren(...items.map((text) => Object.assign(document.createElement('li'), { textContent: text })));
    };
    const poll = async () => {
      const result = await call(report.dataset.url, 'GET').catch(() => null);
      if (result && result.ok) {
        const r = result.data;
        for (const name of ['targeted', 'sent', 'pending', 'state_label']) set(name, String(r[name]));
        set('percent', String(Math.round(r.progress * 100)));
        const bar = report.querySelector('progress');
        if (bar) bar.value = r.progress;
        reasons('skipped', r.skipped, r.reasons);
        reasons('failed', r.failed, r.reasons);
        if (!LIVE.has(r.state)) return;
      }
      setTimeout(poll, REPORT_EVERY_MS);
    };
    setTimeout(poll, REPORT_EVERY_MS);
  }
})();
