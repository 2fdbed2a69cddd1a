/* テンプレート編集: 行番号、入力に合わせたプレビュー（サーバーのサンドボックスで描画した LINE の
 * メッセージを line-preview.js で表示）、問題の行へのジャンプ。
 * JavaScript がなくても保存とプレビュー（フォーム送信）はできる。 */
(() => {
  'use strict';

  const form = document.getElementById('template-form');
  const source = document.getElementById('source');
  if (!form || !source || !window.LinePreview) return;

  const gutter = document.getElementById('gutter');
  const problemsEl = document.getElementById('problems');
  const stateEl = document.getElementById('check-state');
  const tabsEl = document.getElementById('sample-tabs');
  const previewEl = document.getElementById('preview');
  const saveButton = document.getElementById('save-button');
  const previewButton = document.getElementById('preview-button');
  const { h } = window.LinePreview;
  const DELAY_MS = 400;

  let result = null;
  let selected = 0;
  let timer = null;
  let sequence = 0;
  let lastChecked = null;

  // ---------------------------------------------------------------- line numbers
  function badLines() {
    const lines = new Set();
    for (const p of (result && result.problems) || []) if (p.line && p.kind !== 'json') lines.add(p.line);
    return lines;
  }

  function renderGutter() {
    const count = source.value.split('\n').length;
    const bad = badLines();
    const nodes = [];
    for (let i = 1; i <= count; i += 1) {
      nodes.push(bad.has(i) ? h('span', { class: 'bad', text: String(i) }) : String(i));
      if (i < count) nodes.push('\n');
    }
    gutter.replaceChildren(...nodes);
    gutter.scrollTop = source.scrollTop;
  }

  function goToLine(line) {
    const lines = source.value.split('\n');
    const n = Math.min(Math.max(line, 1), lines.length);
    let start = 0;
    for (let i = 0; i < n - 1; i += 1) start += lines[i].length + 1;
    source.focus();
    source.setSelectionRange(start, start + lines[n - 1].length);
    const lineHeight = parseFloat(getComputedStyle(source).lineHeight) || 22;
    source.scrollTop = Math.max(0, (n - 3) * lineHeight);
    gutter.scrollTop = source.scrollTop;
  }

  // ---------------------------------------------------------------- problems and preview
  function renderProblems() {
    const problems = (result && result.problems) || [];
    problemsEl.replaceChildren(...problems.map((p) => {
      const li = h('li', { class: 'problem', text: p.message, 'data-line': p.line && p.kind !== 'json' ? String(p.line) : '' });
      if (p.line && p.kind !== 'json') {
        li.tabIndex = 0;
        li.title = `${p.line}行目へ移動`;
        li.addEventListener('click', () => goToLine(p.line));
        li.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') goToLine(p.line); });
      }
      return li;
    }));
    stateEl.replaceChildren(problems.length
      ? h('span', { class: 'ng', text: `${problems.length}件の問題があります。直すまで保存できません。` })
      : h('span', { class: 'ok', text: '問題はありません。保存できます。' }));
    if (saveButton) saveButton.disabled = problems.length > 0;
  }

  function renderTabs() {
    const samples = (result && result.samples) || [];
    if (selected >= samples.length) selected = 0;
    tabsEl.replaceChildren(...samples.map((s, i) => h('button', {
      type: 'button', class: `sample-tab${s.problems.length ? ' has-problem' : ''}`, role: 'tab',
      'aria-selected': i === selected ? 'true' : 'false',
      onclick: () => { selected = i; renderTabs(); renderPreview(); },
    }, `サンプル${s.number}`)));
    tabsEl.hidden = samples.length <= 1;
  }

  function renderPreview() {
    const samples = (result && result.samples) || [];
    const sample = samples[selected];
    if (!sample) {
      const first = result && result.problems && result.problems[0];
      previewEl.replaceChildren(h('p', { class: 'preview-problem', text: first ? first.message : '表示できません。' }));
      return;
    }
    LinePreview.renderChat(previewEl, sample.messages, {
      accountName: 'ふるさと住民登録',
      onAction: () => {},
    });
    for (const p of sample.problems) previewEl.append(h('p', { class: 'preview-problem', text: p.message }));
    if (!sample.messages.length && !sample.problems.length) {
      previewEl.append(h('p', { class: 'preview-empty', text: 'メッセージはありません。' }));
    }
  }

  function show(data) {
    result = data;
    renderProblems();
    renderTabs();
    renderPreview();
    renderGutter();
  }

  // ---------------------------------------------------------------- checking as one types
  async function check() {
    const text = source.value;
    if (text === lastChecked) return;
    const mine = ++sequence;
    stateEl.replaceChildren(h('span', { class: 'busy', text: '確認しています…' }));
    try {
      const res = await fetch(form.dataset.previewUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': form.dataset.csrf },
        body: JSON.stringify({ source: text }),
        credentials: 'same-origin',
        cache: 'no-store',
      });
      const data = await res.json().catch(() => null);
      if (mine !== sequence) return;
      if (!res.ok || !data) {
        const message = data && data.error ? data.error.message : `確認できませんでした（HTTP ${res.status}）。`;
        stateEl.replaceChildren(h('span', { class: 'ng', text: message }));
        return;
      }
      lastChecked = text;
      show(data);
    } catch (_e) {
      if (mine === sequence) stateEl.replaceChildren(h('span', { class: 'ng', text: '確認できませんでした（接続エラー）。' }));
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(check, DELAY_MS);
  }

  source.addEventListener('input', () => { renderGutter(); schedule(); });
  source.addEventListener('scroll', () => { gutter.scrollTop = source.scrollTop; });
  if (previewButton) {
    previewButton.addEventListener('click', (ev) => { ev.preventDefault(); lastChecked = null; check(); });
  }
  form.addEventListener('submit', () => { clearTimeout(timer); });

  let initial = null;
  try { initial = JSON.parse(document.getElementById('initial-preview').textContent); } catch (_e) { initial = null; }
  lastChecked = source.value;
  if (initial) show(initial); else renderGutter();

  window.templateEditor = { check, get result() { return result; } };
})();
