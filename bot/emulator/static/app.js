/* LINE チャットシミュレーター — エミュレーターの制御 API（/_emulator/...）を使う素の JavaScript。
 * 外部ライブラリなし・ビルドなし。ボットのデータは DOM API（textContent）でのみ描画する。 */
(() => {
  'use strict';

  const params = new URLSearchParams(location.search);
  const ACCOUNT_NAME = params.get('name') || 'ふるさと住民登録';
  const API = '_emulator';
  const LS_USER = 'furusato-sim:user';
  const lsKey = (id) => `furusato-sim:log:${id}`;
  const POLL_WAIT = 25;
  const MAX_ENTRIES = 400;

  const STICKERS = [
    { packageId: '446', stickerId: '1988', color: '#f6c244', eyes: 'happy', mouth: 'smile', caption: 'よろしく' },
    { packageId: '446', stickerId: '1989', color: '#8fd16a', eyes: 'dot', mouth: 'smile', caption: 'OK!' },
    { packageId: '446', stickerId: '1990', color: '#f59bb5', eyes: 'happy', mouth: 'open', caption: 'ありがとう' },
    { packageId: '446', stickerId: '1991', color: '#8ab6f0', eyes: 'dot', mouth: 'sad', caption: 'かなしい' },
    { packageId: '446', stickerId: '1992', color: '#ffb44d', eyes: 'happy', mouth: 'open', caption: 'おめでとう' },
    { packageId: '446', stickerId: '1993', color: '#c3a6f2', eyes: 'wide', mouth: 'o', caption: 'えっ!?' },
    { packageId: '446', stickerId: '1994', color: '#f7a36b', eyes: 'closed', mouth: 'sad', caption: 'ごめんね' },
    { packageId: '446', stickerId: '1995', color: '#9fb7c9', eyes: 'closed', mouth: 'smile', caption: 'おやすみ' },
  ];

  // Static, trusted SVG icons (stroke = currentColor).
  const ICON = {
    image: '<rect x="3" y="4.5" width="18" height="15" rx="2.5"/><circle cx="8.5" cy="9.5" r="1.6"/><path d="m4 17.5 5-5 3.5 3.5 3-3 4.5 4.5"/>',
    camera: '<path d="M4 8h3l1.6-2.5h6.8L17 8h3v11H4Z"/><circle cx="12" cy="13" r="3.4"/>',
    pin: '<path d="M12 21.5s-6.5-6.2-6.5-11.3a6.5 6.5 0 0 1 13 0c0 5.1-6.5 11.3-6.5 11.3Z"/><circle cx="12" cy="10" r="2.2"/>',
    calendar: '<rect x="3.5" y="5" width="17" height="15" rx="2"/><path d="M3.5 10h17M8 3v4M16 3v4"/>',
    link: '<path d="M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1"/><path d="M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1"/>',
    clipboard: '<rect x="5" y="4.5" width="14" height="16" rx="2"/><path d="M9 4.5h6v3H9z"/>',
    video: '<rect x="3" y="5.5" width="13" height="13" rx="2"/><path d="m16 10 5-3v10l-5-3"/>',
    audio: '<path d="M9 18V5l10-2v13"/><circle cx="6.5" cy="18" r="2.5"/><circle cx="16.5" cy="16" r="2.5"/>',
    unknown: '<circle cx="12" cy="12" r="9"/><path d="M9.5 9.5a2.5 2.5 0 1 1 3.5 2.3c-.7.3-1 .9-1 1.7M12 16.5v.5"/>',
    warning: '<path d="M12 3.5 2.5 20h19Z"/><path d="M12 10v4.5M12 17v.5"/>',
  };
  function icon(name, size = 22) {
    return svg(`<svg viewBox="0 0 24 24" width="${size}" height="${size}" fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true">${ICON[name] || ICON.unknown}</svg>`);
  }

  function stickerArt(v, withCaption = true) {
    const eyes = {
      dot: '<circle cx="46" cy="50" r="5" fill="#333"/><circle cx="74" cy="50" r="5" fill="#333"/>',
      wide: '<circle cx="46" cy="48" r="8" fill="#fff" stroke="#333" stroke-width="3"/><circle cx="74" cy="48" r="8" fill="#fff" stroke="#333" stroke-width="3"/><circle cx="46" cy="49" r="3.5" fill="#333"/><circle cx="74" cy="49" r="3.5" fill="#333"/>',
      happy: '<path d="M39 52q7-9 14 0M67 52q7-9 14 0" fill="none" stroke="#333" stroke-width="4" stroke-linecap="round"/>',
      closed: '<path d="M39 50q7 7 14 0M67 50q7 7 14 0" fill="none" stroke="#333" stroke-width="4" stroke-linecap="round"/>',
    }[v.eyes];
    const mouth = {
      smile: '<path d="M50 64q10 10 20 0" fill="none" stroke="#333" stroke-width="4" stroke-linecap="round"/>',
      open: '<path d="M48 62q12 18 24 0Z" fill="#c2413b" stroke="#333" stroke-width="3" stroke-linejoin="round"/>',
      sad: '<path d="M50 70q10-9 20 0" fill="none" stroke="#333" stroke-width="4" stroke-linecap="round"/>',
      o: '<ellipse cx="60" cy="68" rx="6" ry="7" fill="#c2413b" stroke="#333" stroke-width="3"/>',
    }[v.mouth];
    const caption = withCaption && v.caption
      ? `<text x="60" y="112" text-anchor="middle" font-size="${v.caption.length > 4 ? 17 : 20}" font-weight="900" fill="#333" stroke="#fff" stroke-width="5" paint-order="stroke" stroke-linejoin="round">${v.caption}</text>`
      : '';
    return svg(`<svg viewBox="0 0 120 120" width="120" height="120" aria-hidden="true">
      <circle cx="28" cy="22" r="13" fill="${v.color}" stroke="#fff" stroke-width="4"/><circle cx="92" cy="22" r="13" fill="${v.color}" stroke="#fff" stroke-width="4"/>
      <ellipse cx="60" cy="56" rx="42" ry="38" fill="${v.color}" stroke="#fff" stroke-width="5"/>
      <ellipse cx="36" cy="64" rx="7" ry="4.5" fill="#ff7f9a" opacity=".55"/><ellipse cx="84" cy="64" rx="7" ry="4.5" fill="#ff7f9a" opacity=".55"/>
      ${eyes}${mouth}${caption}</svg>`);
  }

  // ---------------------------------------------------------------- helpers
  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v == null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k === 'style') Object.assign(el.style, v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children.flat(Infinity)) {
      if (c == null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const pad2 = (n) => String(n).padStart(2, '0');
  const fmtTime = (ms) => { const d = new Date(ms); return `${d.getHours()}:${pad2(d.getMinutes())}`; };
  const WEEK = ['日', '月', '火', '水', '木', '金', '土'];
  function fmtDate(ms) {
    const d = new Date(ms);
    const today = new Date();
    const y = new Date(); y.setDate(today.getDate() - 1);
    const same = (a, b) => a.toDateString() === b.toDateString();
    if (same(d, today)) return '今日';
    if (same(d, y)) return '昨日';
    return `${d.getFullYear()}年${d.getMonth() + 1}月${d.getDate()}日(${WEEK[d.getDay()]})`;
  }
  function parseAt(at) {
    if (at == null || at === '') return Date.now();
    if (typeof at === 'number') return at < 1e12 ? at * 1000 : at;
    if (/^\d+(\.\d+)?$/.test(String(at))) return parseAt(Number(at));
    const t = Date.parse(at);
    return Number.isNaN(t) ? Date.now() : t;
  }
  function hashCode(s) {
    let x = 0;
    for (const ch of String(s)) x = (x * 31 + ch.codePointAt(0)) | 0;
    return Math.abs(x);
  }
  const AVATAR_COLORS = ['#f39c12', '#3d8bfd', '#e0567a', '#8e6bd8', '#17a589', '#e67e22', '#5d6d7e', '#c0392b'];
  const userColor = (id) => AVATAR_COLORS[hashCode(id) % AVATAR_COLORS.length];
  const enc = encodeURIComponent;

  // ---------------------------------------------------------------- toasts
  function toast(message, kind = 'error') {
    const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, h('span', { text: message }));
    $('toasts').append(el);
    setTimeout(() => el.remove(), kind === 'error' ? 6000 : 3000);
  }

  // ---------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(message, status) { super(message); this.status = status; }
  }

  async function api(method, path, body, what) {
    let res;
    try {
      res = await fetch(`${API}${path}`, {
        method,
        headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (_e) {
      throw new ApiError(`${what}に失敗しました（エミュレーターに接続できません）`, 0);
    }
    const raw = await res.text();
    let data = null;
    try { data = raw ? JSON.parse(raw) : null; } catch (_e) { data = null; }
    if (!res.ok) {
      const detail = data && (data.message || data.error || data.detail);
      throw new ApiError(`${what}に失敗しました（HTTP ${res.status}${detail ? `：${detail}` : ''}）`, res.status);
    }
    return data;
  }

  // ---------------------------------------------------------------- state
  const state = {
    users: [],
    usersKey: '',
    userId: null,
    entries: [],          // {id, side:'user'|'bot', message, at, seq?, via?, status?}
    lastSeq: 0,
    hiddenUpto: 0,        // 「表示をクリア」: bot messages up to this seq stay hidden
    pollGen: 0,
    pollAbort: null,
    richMenu: null,
    richMenuKey: '',
    menuOpen: false,
    qrDismissedFor: null,
    nextLocalId: 1,
  };
  const rowEls = new Map();

  const currentUser = () => state.users.find((u) => u.userId === state.userId) || null;

  // ---------------------------------------------------------------- persistence (own messages only)
  function saveLocal() {
    if (!state.userId) return;
    const mine = state.entries.filter((e) => e.side === 'user').slice(-MAX_ENTRIES).map((e) => {
      let message = e.message;
      if (message.type === 'image' && String(message.originalContentUrl || '').length > 150000) {
        message = { type: 'image', originalContentUrl: '', previewImageUrl: '', localTooLarge: true };
      }
      return { id: e.id, side: 'user', message, at: e.at, status: e.status === 'sending' ? 'failed' : e.status };
    });
    try {
      localStorage.setItem(lsKey(state.userId), JSON.stringify({ lastSeq: state.lastSeq, hiddenUpto: state.hiddenUpto, entries: mine }));
    } catch (_e) { /* quota: keep going without persistence */ }
  }

  function loadLocal(userId) {
    try {
      const v = JSON.parse(localStorage.getItem(lsKey(userId)) || 'null');
      if (v && Array.isArray(v.entries)) return v;
    } catch (_e) { /* ignore */ }
    return { lastSeq: 0, hiddenUpto: 0, entries: [] };
  }

  // ---------------------------------------------------------------- users
  async function refreshUsers({ quiet = false } = {}) {
    let data;
    try {
      data = await api('GET', '/users', undefined, 'ユーザー一覧の取得');
    } catch (e) {
      if (!quiet) toast(e.message);
      return false;
    }
    const users = (data && data.users) || [];
    const key = JSON.stringify(users);
    state.users = users;
    if (key !== state.usersKey) {
      state.usersKey = key;
      renderUsers();
    }
    if (state.userId && !users.some((u) => u.userId === state.userId)) {
      // The emulator was reset or the user is gone.
      try { localStorage.removeItem(lsKey(state.userId)); } catch (_e) { /* ignore */ }
      await selectUser(users.length ? users[users.length - 1].userId : null);
    } else if (!state.userId && users.length && started) {
      // Users appeared (created elsewhere, or the emulator came back): pick one.
      let saved = null;
      try { saved = localStorage.getItem(LS_USER); } catch (_e) { /* ignore */ }
      await selectUser(users.some((u) => u.userId === saved) ? saved : users[users.length - 1].userId);
    }
    renderCurrent();
    return true;
  }

  function statusOf(u) {
    if (!u) return { text: '', cls: '' };
    if (u.blocked) return { text: 'ブロック中', cls: 'blocked' };
    if (u.following) return { text: '友だち', cls: 'following' };
    return { text: '友だち未追加', cls: '' };
  }

  function renderUsers() {
    const list = $('user-list');
    list.replaceChildren(...state.users.map((u) => {
      const st = statusOf(u);
      const name = u.displayName || u.userId;
      return h('li', null, h('button', {
        type: 'button', class: 'user-item', 'aria-current': u.userId === state.userId ? 'true' : 'false',
        'data-user-id': u.userId, title: u.userId,
        onclick: () => selectUser(u.userId),
      },
      h('span', { class: 'user-avatar', style: { background: userColor(u.userId) }, text: [...name][0] || '?' }),
      h('span', { class: 'user-meta' }, h('span', { class: 'name', text: name }), h('span', { class: `status ${st.cls}`, text: st.text }))));
    }));
    $('user-empty').hidden = state.users.length > 0;
  }

  function renderCurrent() {
    const u = currentUser();
    const st = statusOf(u);
    $('current-name').textContent = u ? (u.displayName || '（名前なし）') : '（未選択）';
    $('current-id').textContent = u ? u.userId : '';
    const cs = $('current-status');
    cs.textContent = st.text;
    cs.className = `current-status ${st.cls}`;
    $('chat-user-name').textContent = u ? `${u.displayName || u.userId}${st.text ? `（${st.text}）` : ''}` : '未選択';

    const ft = $('follow-toggle');
    ft.disabled = !u;
    ft.className = u && u.following && !u.blocked ? 'danger' : '';
    ft.textContent = !u ? '友だち追加' : u.blocked ? 'ブロック解除' : u.following ? 'ブロック' : '友だち追加';
    $('clear-log').disabled = !u;

    const input = $('message-input');
    const blocked = !!(u && u.blocked);
    input.disabled = !u || blocked;
    input.placeholder = !u ? 'ユーザーを選択してください' : blocked ? 'ブロック中は送信できません' : 'メッセージを入力';
    $('input-bar').classList.toggle('blocked', !u || blocked);
    updateSendButton();

    const banner = $('banner');
    if (u && blocked) {
      banner.hidden = false;
      $('banner-text').textContent = 'このアカウントをブロックしています。';
      $('banner-action').textContent = 'ブロック解除';
    } else if (u && !u.following) {
      banner.hidden = false;
      $('banner-text').textContent = '友だち追加していません。';
      $('banner-action').textContent = '追加';
    } else {
      banner.hidden = true;
    }
    for (const b of document.querySelectorAll('.user-item')) {
      b.setAttribute('aria-current', b.dataset.userId === state.userId ? 'true' : 'false');
    }
  }

  async function createUser(displayName) {
    const data = await api('POST', '/users', { displayName }, 'ユーザーの作成');
    await refreshUsers();
    if (data && data.userId) await selectUser(data.userId);
    toast(`ユーザー「${displayName}」を作成しました`, 'info');
  }

  async function toggleFollow() {
    const u = currentUser();
    if (!u) return;
    const follow = u.blocked || !u.following;
    try {
      const res = await api('POST', `/users/${enc(u.userId)}/${follow ? 'follow' : 'unfollow'}`, {},
        follow ? (u.blocked ? 'ブロック解除' : '友だち追加') : 'ブロック');
      logEvent(follow ? (u.blocked ? 'ブロック解除（follow）' : '友だち追加（follow）') : 'ブロック（unfollow）', res);
      checkBotStatus(res);
    } catch (e) {
      toast(e.message);
    }
    await refreshUsers();
    refreshRichMenu();
  }

  async function selectUser(userId) {
    state.pollGen += 1;
    if (state.pollAbort) state.pollAbort.abort();
    state.pollAbort = null;
    state.userId = userId;
    state.entries = [];
    state.lastSeq = 0;
    state.hiddenUpto = 0;
    state.qrDismissedFor = null;
    state.richMenu = null;
    state.richMenuKey = '';
    state.menuOpen = false;
    try {
      if (userId) localStorage.setItem(LS_USER, userId); else localStorage.removeItem(LS_USER);
    } catch (_e) { /* ignore */ }
    renderUsers();
    renderCurrent();
    renderAll();
    renderRichMenu();
    if (!userId) return;

    const gen = state.pollGen;
    const local = loadLocal(userId);
    let server = [];
    try {
      const data = await api('GET', `/users/${enc(userId)}/inbox?after=0&wait=0`, undefined, 'メッセージの取得');
      server = (data && data.messages) || [];
    } catch (e) {
      if (gen !== state.pollGen) return;
      toast(e.message);
    }
    if (gen !== state.pollGen) return;
    const maxSeq = server.reduce((m, x) => Math.max(m, Number(x.seq) || 0), 0);
    let mine = local.entries.filter((e) => e && e.side === 'user' && e.message);
    state.hiddenUpto = Number(local.hiddenUpto) || 0;
    if (local.lastSeq > maxSeq) { mine = []; state.hiddenUpto = 0; } // the emulator was reset
    const bots = server.map(botEntry).filter((e) => e.seq > state.hiddenUpto);
    const all = [...mine, ...bots].sort((a, b) => (a.at - b.at) || (a.side === 'user' ? -1 : 1));
    state.entries = all.slice(-MAX_ENTRIES);
    for (const e of state.entries) if (e.side === 'user' && typeof e.id === 'string') {
      const n = Number(e.id.replace(/^u/, ''));
      if (n >= state.nextLocalId) state.nextLocalId = n + 1;
    }
    state.lastSeq = maxSeq;
    renderAll();
    saveLocal();
    refreshRichMenu();
    pollLoop(gen, userId);
  }

  function botEntry(m) {
    return { id: `s${m.seq}`, side: 'bot', message: m.message || {}, at: parseAt(m.at), seq: Number(m.seq) || 0, via: m.via };
  }

  // ---------------------------------------------------------------- inbox long-poll
  async function pollLoop(gen, userId) {
    let failures = 0;
    while (gen === state.pollGen) {
      const ctrl = new AbortController();
      state.pollAbort = ctrl;
      try {
        const res = await fetch(`${API}/users/${enc(userId)}/inbox?after=${state.lastSeq}&wait=${POLL_WAIT}`,
          { signal: ctrl.signal, cache: 'no-store' });
        if (gen !== state.pollGen) return;
        if (res.status === 404) { await refreshUsers({ quiet: true }); return; }
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const data = await res.json();
        if (gen !== state.pollGen) return;
        if (failures > 0) toast('メッセージの受信を再開しました', 'info');
        failures = 0;
        const msgs = ((data && data.messages) || []).filter((m) => (Number(m.seq) || 0) > state.lastSeq)
          .sort((a, b) => a.seq - b.seq);
        if (msgs.length) receive(msgs);
      } catch (e) {
        if (gen !== state.pollGen || (e && e.name === 'AbortError')) return;
        failures += 1;
        if (failures === 1) toast(`メッセージの受信に失敗しました（${e.message || '接続エラー'}）。再接続します…`);
        await sleep(Math.min(10000, 500 * 2 ** failures));
      }
    }
  }

  function receive(msgs) {
    for (const m of msgs) {
      const e = botEntry(m);
      state.lastSeq = Math.max(state.lastSeq, e.seq);
      addEntry(e);
    }
    // Bot answered: everything the user sent before is read.
    for (const e of state.entries) {
      if (e.side === 'user' && e.status === 'sent') { e.status = 'read'; updateMeta(e); }
    }
    saveLocal();
    refreshRichMenu();
  }

  // ---------------------------------------------------------------- sending
  function logEvent(kind, res) {
    const list = $('event-log');
    const status = res && res.status;
    const ok = status === 200;
    const li = h('li', null,
      h('time', { text: fmtTime(Date.now()) }),
      h('span', { class: 'kind', text: kind, title: res && res.webhookEventId ? `webhookEventId: ${res.webhookEventId}` : null }),
      h('span', { class: `code ${ok ? 'ok' : 'ng'}`, text: status == null ? '—' : String(status) }));
    list.prepend(li);
    while (list.children.length > 30) list.lastChild.remove();
  }

  function checkBotStatus(res) {
    if (!res) return;
    const s = res.status;
    if (s === 200) return;
    if (s == null || s === 0) toast('ボットに Webhook を届けられませんでした（Webhook URL が未設定か、ボットが応答していません）');
    else toast(`ボットがエラーを返しました（HTTP ${s}）`);
  }

  async function sendEvent(kind, path, body, localMessage) {
    const u = currentUser();
    if (!u) { toast('先にユーザーを選択してください'); return null; }
    if (u.blocked) { toast('ブロック中は送信できません。ブロックを解除してください。'); return null; }
    let entry = null;
    if (localMessage) {
      entry = { id: `u${state.nextLocalId++}`, side: 'user', message: localMessage, at: Date.now(), status: 'sending' };
      addEntry(entry);
    }
    try {
      const res = await api('POST', `/users/${enc(u.userId)}/${path}`, body, `${kind}の送信`);
      logEvent(kind, res);
      checkBotStatus(res);
      if (entry) {
        // The platform accepted the message; a bot in bot mode reads it at once (既読).
        entry.status = res && res.status === 200 ? 'read' : 'sent';
        updateMeta(entry);
      }
      saveLocal();
      refreshRichMenu();
      return res;
    } catch (e) {
      toast(e.message);
      if (entry) { entry.status = 'failed'; updateMeta(entry); saveLocal(); }
      return null;
    }
  }

  function sendText(text) {
    if (!text || !text.trim()) return null;
    if ([...text].length > 5000) { toast('テキストは 5,000 文字以内にしてください'); return null; }
    return sendEvent('テキスト', 'text', { text }, { type: 'text', text });
  }

  function sendPostback(data, extra, displayText) {
    const body = { data: String(data ?? '') };
    if (extra) body.params = extra;
    const local = displayText ? { type: 'text', text: displayText } : null;
    return sendEvent('ポストバック', 'postback', body, local);
  }

  function sendSticker(s) {
    return sendEvent('スタンプ', 'sticker', { packageId: s.packageId, stickerId: s.stickerId },
      { type: 'sticker', packageId: s.packageId, stickerId: s.stickerId });
  }

  function sendLocation(loc) {
    return sendEvent('位置情報', 'location', loc, { type: 'location', ...loc });
  }

  async function sendImageFile(file) {
    if (!file) return;
    if (!file.type.startsWith('image/')) { toast('画像ファイルを選択してください'); return; }
    let dataUrl;
    try {
      dataUrl = await readAsDataURL(file);
      if (!/^image\/(jpeg|png)$/.test(file.type) || file.size > 4 * 1024 * 1024) dataUrl = await toJpeg(dataUrl);
    } catch (_e) {
      toast('画像を読み込めませんでした');
      return;
    }
    const base64 = dataUrl.slice(dataUrl.indexOf(',') + 1);
    await sendEvent('画像', 'image', { base64 }, { type: 'image', originalContentUrl: dataUrl, previewImageUrl: dataUrl });
  }

  function readAsDataURL(file) {
    return new Promise((resolve, reject) => {
      const r = new FileReader();
      r.onload = () => resolve(String(r.result));
      r.onerror = () => reject(r.error);
      r.readAsDataURL(file);
    });
  }

  function toJpeg(dataUrl, maxSide = 2048) {
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => {
        const scale = Math.min(1, maxSide / Math.max(img.width, img.height));
        const c = document.createElement('canvas');
        c.width = Math.round(img.width * scale);
        c.height = Math.round(img.height * scale);
        const ctx = c.getContext('2d');
        ctx.fillStyle = '#fff';
        ctx.fillRect(0, 0, c.width, c.height);
        ctx.drawImage(img, 0, 0, c.width, c.height);
        resolve(c.toDataURL('image/jpeg', 0.9));
      };
      img.onerror = reject;
      img.src = dataUrl;
    });
  }

  // ---------------------------------------------------------------- actions
  function actionLabel(a) {
    if (!a) return '';
    return a.label || a.displayText || a.text || a.data || a.uri || '';
  }

  function safeUri(uri) {
    const s = String(uri || '').trim();
    return /^(https?:|tel:|mailto:)/i.test(s) ? s : null;
  }

  function performAction(a) {
    if (!a || !a.type) return;
    switch (a.type) {
      case 'message':
        sendText(a.text || a.label || '');
        break;
      case 'postback':
        if (a.fillInText) {
          const input = $('message-input');
          input.value = a.fillInText;
          autoGrow();
          updateSendButton();
          if (a.inputOption === 'openKeyboard') input.focus();
        }
        sendPostback(a.data, null, a.displayText || a.text);
        break;
      case 'datetimepicker':
        openDatetimePicker(a);
        break;
      case 'uri': {
        const uri = safeUri((a.altUri && a.altUri.desktop) || a.uri);
        if (uri) window.open(uri, '_blank', 'noopener');
        else toast(`このリンクは LINE アプリでのみ開けます（${a.uri || ''}）`, 'info');
        break;
      }
      case 'camera':
      case 'cameraRoll':
        $('image-file').click();
        break;
      case 'location':
        openLocationDialog();
        break;
      case 'richmenuswitch':
        switchRichMenu(a);
        break;
      case 'clipboard':
        if (navigator.clipboard) {
          navigator.clipboard.writeText(a.clipboardText || '').then(
            () => toast('クリップボードにコピーしました', 'info'),
            () => toast('クリップボードにコピーできませんでした'));
        }
        break;
      default:
        toast(`未対応のアクションです（${a.type}）`, 'info');
    }
  }

  // Only the emulator knows rich menu aliases: let it perform the switch through /tap, unless a
  // message action with a similar label would be tapped instead (then send the postback ourselves).
  function collectLabels(node, out) {
    if (Array.isArray(node)) { for (const x of node) collectLabels(x, out); return out; }
    if (node && typeof node === 'object') {
      if (typeof node.type === 'string' && typeof node.label === 'string') out.push(node.label);
      for (const v of Object.values(node)) if (v && typeof v === 'object') collectLabels(v, out);
    }
    return out;
  }

  async function switchRichMenu(a) {
    const u = currentUser();
    const label = a.label || '';
    const clash = state.entries.some((e) => e.side === 'bot' && collectLabels(e.message, []).some((l) => l.includes(label)));
    if (!u || !label || clash || u.blocked) {
      sendPostback(a.data, { newRichMenuAliasId: String(a.richMenuAliasId || ''), status: 'SUCCESS' });
      return;
    }
    try {
      const res = await api('POST', `/users/${enc(u.userId)}/tap`, { label }, 'リッチメニューの切り替え');
      logEvent('ポストバック（メニュー切替）', res);
      checkBotStatus(res);
    } catch (e) {
      toast(e.message);
    }
    refreshRichMenu();
  }

  function clickable(el, action) {
    if (!action) return el;
    el.classList.add('fx-clickable');
    el.setAttribute('role', el.getAttribute('role') || 'button');
    el.tabIndex = 0;
    if (!el.getAttribute('aria-label') && action.label) el.setAttribute('aria-label', action.label);
    el.addEventListener('click', (ev) => {
      if (ev.target.closest('button, a') && ev.target.closest('button, a') !== el) return;
      ev.stopPropagation();
      performAction(action);
    });
    el.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); performAction(action); }
    });
    return el;
  }

  function actionButton(action, cls) {
    return h('button', { type: 'button', class: cls, onclick: () => performAction(action) }, actionLabel(action));
  }

  // datetime picker
  let pendingPicker = null;
  function openDatetimePicker(a) {
    const mode = ['date', 'time', 'datetime'].includes(a.mode) ? a.mode : 'datetime';
    const input = $('datetime-input');
    input.type = mode === 'datetime' ? 'datetime-local' : mode;
    input.min = a.min || '';
    input.max = a.max || '';
    const now = new Date();
    const d = `${now.getFullYear()}-${pad2(now.getMonth() + 1)}-${pad2(now.getDate())}`;
    const t = `${pad2(now.getHours())}:${pad2(now.getMinutes())}`;
    input.value = a.initial || (mode === 'date' ? d : mode === 'time' ? t : `${d}T${t}`);
    $('datetime-title').textContent = a.label || { date: '日付を選択', time: '時刻を選択', datetime: '日時を選択' }[mode];
    pendingPicker = { action: a, mode };
    const dlg = $('datetime-dialog');
    if (!dlg.open) dlg.showModal();
    input.focus();
  }

  function openLocationDialog() {
    if (!currentUser()) { toast('先にユーザーを選択してください'); return; }
    const dlg = $('location-dialog');
    if (!dlg.open) dlg.showModal();
  }

  // ---------------------------------------------------------------- chat rendering
  function addEntry(e) {
    state.entries.push(e);
    if (state.entries.length > MAX_ENTRIES) {
      const drop = state.entries.splice(0, state.entries.length - MAX_ENTRIES);
      for (const d of drop) {
        const el = rowEls.get(d.id);
        if (el) { resizeWatch.unobserve(el); el.remove(); }
        rowEls.delete(d.id);
      }
    }
    appendRow(e, state.entries[state.entries.length - 2]);
    renderQuickReplies();
    scrollToBottom(true);
  }

  function renderAll() {
    const chat = $('chat');
    for (const el of rowEls.values()) resizeWatch.unobserve(el);
    rowEls.clear();
    chat.replaceChildren();
    if (!state.userId) {
      chat.append($('chat-empty') || emptyNode());
    } else {
      let prev = null;
      for (const e of state.entries) { appendRow(e, prev); prev = e; }
    }
    renderQuickReplies();
    scrollToBottom(true);
  }

  let emptyTemplate = null;
  function emptyNode() { return emptyTemplate.cloneNode(true); }

  // The chat stays pinned to the newest message while the reader is at the bottom, also when
  // images load, the rich menu opens or the window is resized.
  let pinned = true;
  const resizeWatch = new ResizeObserver(() => { if (pinned) $('chat').scrollTop = $('chat').scrollHeight; });

  function scrollToBottom(force) {
    const chat = $('chat');
    if (force) pinned = true;
    if (pinned) {
      chat.scrollTop = chat.scrollHeight;
      requestAnimationFrame(() => { if (pinned) chat.scrollTop = chat.scrollHeight; });
    }
  }

  function appendRow(e, prev) {
    const chat = $('chat');
    const empty = chat.querySelector('.chat-empty');
    if (empty) empty.remove();
    if (!prev || new Date(prev.at).toDateString() !== new Date(e.at).toDateString()) {
      chat.append(h('div', { class: 'date-sep' }, h('span', { text: fmtDate(e.at) })));
    }
    let content;
    try {
      content = renderMessage(e.message || {}, e.side);
    } catch (err) {
      console.error(err);
      content = h('div', { class: 'placeholder' }, h('span', { class: 'ph-icon' }, icon('warning')), h('span', { text: `表示できないメッセージです（${e.message && e.message.type}）` }));
    }
    const meta = h('div', { class: 'meta' });
    let row;
    if (e.side === 'bot') {
      const cont = prev && prev.side === 'bot' && e.at - prev.at < 60000;
      row = h('div', { class: `row bot${cont ? ' cont' : ''}`, 'data-seq': e.seq, 'data-via': e.via || '', 'data-type': (e.message && e.message.type) || '' },
        cont ? h('div', { class: 'avatar', 'aria-hidden': 'true' }) : avatarNode(),
        h('div', { class: 'col' }, cont ? null : h('div', { class: 'bot-name', text: ACCOUNT_NAME }), h('div', { class: 'line' }, content, meta)));
    } else {
      const first = !prev || prev.side !== 'user';
      row = h('div', { class: `row user${first ? ' first' : ''}`, 'data-type': (e.message && e.message.type) || '' },
        h('div', { class: 'line' }, meta, content));
    }
    rowEls.set(e.id, row);
    fillMeta(meta, e);
    chat.append(row);
    resizeWatch.observe(row);
  }

  function fillMeta(meta, e) {
    const parts = [];
    if (e.side === 'user') {
      if (e.status === 'read') parts.push(h('span', { class: 'read', text: '既読' }));
      if (e.status === 'sending') parts.push(h('span', { class: 'sending', text: '送信中' }));
      if (e.status === 'failed') parts.push(h('span', { class: 'failed', text: '送信失敗', title: 'ボットに届かなかったか、エラーが返りました' }));
    }
    const via = { reply: '応答', push: 'プッシュ', multicast: 'マルチキャスト', broadcast: '一斉配信', narrowcast: 'ナローキャスト' };
    parts.push(h('time', {
      text: fmtTime(e.at), datetime: new Date(e.at).toISOString(),
      title: e.side === 'bot' && e.via ? `${via[e.via] || e.via}メッセージ` : null,
    }));
    meta.replaceChildren(...parts);
  }

  function updateMeta(e) {
    const row = rowEls.get(e.id);
    if (!row) return;
    const meta = row.querySelector(':scope .meta');
    if (meta) fillMeta(meta, e);
  }

  function avatarNode() {
    return h('div', { class: 'avatar', 'aria-hidden': 'true' },
      svg('<svg viewBox="0 0 36 36" width="36" height="36"><circle cx="18" cy="18" r="18" fill="#06c755"/><path d="M9 17.5 18 10l9 7.5" fill="none" stroke="#fff" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/><path d="M11.5 16v10h13V16" fill="#fff"/><rect x="16" y="20" width="4" height="6" rx="1" fill="#06c755"/></svg>'));
  }

  function svg(markup) {
    // Static, trusted markup only.
    const t = document.createElement('template');
    t.innerHTML = markup;
    return t.content.firstChild;
  }

  function linkify(text) {
    const out = [];
    const re = /https?:\/\/[^\s<>"'、。「」『』（）()【】]+/g;
    let last = 0;
    let m;
    while ((m = re.exec(text))) {
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(h('a', { href: m[0], target: '_blank', rel: 'noopener noreferrer', text: m[0] }));
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  function textOf(m) {
    let text = String(m.text ?? '');
    if (m.type === 'textV2' && m.substitution) {
      text = text.replace(/\{([A-Za-z0-9_]+)\}/g, (all, key) => {
        const s = m.substitution[key];
        if (!s) return all;
        if (s.type === 'mention') {
          if (s.mentionee && s.mentionee.type === 'all') return '@All';
          const u = state.users.find((x) => s.mentionee && x.userId === s.mentionee.userId);
          return `@${u ? u.displayName : 'ユーザー'}`;
        }
        return '☺';
      });
    } else if (Array.isArray(m.emojis) && m.emojis.length) {
      const chars = text.split('');
      for (const em of [...m.emojis].sort((a, b) => b.index - a.index)) {
        if (chars[em.index] === '$') chars[em.index] = '☺';
      }
      text = chars.join('');
    }
    return text;
  }

  function imgFrame(url, ratio, fit, bg) {
    const [w, hh] = String(ratio || '1:1').split(':').map(Number);
    const r = w > 0 && hh > 0 ? hh / w : 1;
    const frame = h('div', { class: 'img-frame', style: { paddingBottom: `${(r * 100).toFixed(3)}%`, backgroundColor: bg || '' } });
    const img = h('img', { alt: '', loading: 'lazy', style: { objectFit: fit } });
    img.addEventListener('error', () => frame.classList.add('broken'));
    if (url) img.src = url; else frame.classList.add('broken');
    frame.append(img);
    return frame;
  }

  function stickerFace(m) {
    const known = STICKERS.find((s) => String(s.packageId) === String(m.packageId) && String(s.stickerId) === String(m.stickerId));
    if (known) return stickerArt(known);
    return stickerArt(STICKERS[hashCode(`${m.packageId}/${m.stickerId}`) % STICKERS.length], false);
  }

  function renderMessage(m, side) {
    switch (m.type) {
      case 'text':
      case 'textV2':
        return h('div', { class: 'bubble text' }, linkify(textOf(m)));
      case 'image': {
        if (m.localTooLarge) return h('div', { class: 'placeholder bubble' }, h('span', { class: 'ph-icon' }, icon('image')), '画像');
        const src = m.previewImageUrl || m.originalContentUrl;
        const img = h('img', { alt: '画像', src });
        const wrap = h('a', { class: 'bubble media', href: m.originalContentUrl || src, target: '_blank', rel: 'noopener' }, img);
        img.addEventListener('error', () => wrap.replaceWith(h('div', { class: 'placeholder bubble' }, h('span', { class: 'ph-icon' }, icon('image')), h('span', { text: '画像（読み込めません）' }))));
        return wrap;
      }
      case 'sticker':
        return h('div', { class: 'bubble sticker', title: `スタンプ ${m.packageId}/${m.stickerId}` },
          stickerFace(m));
      case 'location': {
        const q = `${m.latitude},${m.longitude}`;
        return h('div', { class: 'bubble card location' },
          h('div', { class: 'map', 'aria-hidden': 'true' }),
          h('div', { class: 'info' },
            h('div', { class: 'title', text: m.title || '位置情報' }),
            h('div', { class: 'address', text: m.address || q }),
            h('a', { href: `https://www.google.com/maps?q=${enc(q)}`, target: '_blank', rel: 'noopener', text: '地図で見る' })));
      }
      case 'video':
      case 'audio':
        return h('div', { class: 'placeholder bubble' }, h('span', { class: 'ph-icon' }, icon(m.type)),
          h('span', { text: m.type === 'video' ? '動画' : `音声${m.duration ? `（${Math.round(m.duration / 1000)}秒）` : ''}` }));
      case 'template':
        return renderTemplate(m);
      case 'flex':
        return renderFlexMessage(m);
      case 'imagemap':
        return renderImagemap(m);
      default:
        return h('div', { class: 'placeholder bubble' }, h('span', { class: 'ph-icon' }, icon('unknown')),
          h('span', { text: m.altText || `未対応のメッセージ（${m.type || '不明'}）` }));
    }
  }

  // ---- template messages
  function tplColumn(col, t, extraClass) {
    const card = h('div', { class: `tpl-card ${extraClass || ''}` });
    if (col.thumbnailImageUrl) {
      const ratio = t.imageAspectRatio === 'square' ? '1:1' : '151:100';
      const fit = t.imageSize === 'contain' ? 'contain' : 'cover';
      const frame = imgFrame(col.thumbnailImageUrl, ratio, fit, col.imageBackgroundColor || '#fff');
      card.append(col.defaultAction ? clickable(frame, col.defaultAction) : frame);
    }
    const body = h('div', { class: 'tpl-body' },
      col.title ? h('div', { class: 'tpl-title', text: col.title }) : null,
      h('div', { class: 'tpl-text', text: col.text || '' }));
    card.append(col.defaultAction ? clickable(body, col.defaultAction) : body);
    card.append(h('div', { class: 'tpl-actions' }, (col.actions || []).map((a) => actionButton(a, 'tpl-action'))));
    return card;
  }

  function renderTemplate(m) {
    const t = m.template || {};
    switch (t.type) {
      case 'buttons':
        return h('div', { class: 'bubble', title: m.altText || '' }, tplColumn(t, t));
      case 'confirm':
        return h('div', { class: 'bubble', title: m.altText || '' }, tplColumn({ text: t.text, actions: t.actions }, t, 'tpl-confirm'));
      case 'carousel':
        return h('div', { class: 'bubble wide scroller', title: m.altText || '' }, (t.columns || []).map((c) => tplColumn(c, t)));
      case 'image_carousel':
        return h('div', { class: 'bubble wide scroller', title: m.altText || '' }, (t.columns || []).map((c) => {
          const el = h('div', { class: 'tpl-imgcol' }, imgFrame(c.imageUrl, '1:1', 'cover'),
            c.action && c.action.label ? h('div', { class: 'label', text: c.action.label }) : null);
          return clickable(el, c.action);
        }));
      default:
        return h('div', { class: 'placeholder bubble' }, h('span', { text: m.altText || 'テンプレートメッセージ' }));
    }
  }

  function renderImagemap(m) {
    const bs = m.baseSize || { width: 1040, height: 1040 };
    const wrap = h('div', { class: 'bubble imagemap', title: m.altText || '' });
    const frame = imgFrame(m.baseUrl ? `${m.baseUrl}/1040` : '', `${bs.width}:${bs.height}`, 'cover');
    wrap.append(frame);
    for (const a of m.actions || []) {
      const ar = a.area || {};
      const btn = h('button', {
        type: 'button', class: 'area', 'aria-label': a.label || a.text || a.linkUri || '',
        style: {
          left: `${(ar.x / bs.width) * 100}%`, top: `${(ar.y / bs.height) * 100}%`,
          width: `${(ar.width / bs.width) * 100}%`, height: `${(ar.height / bs.height) * 100}%`,
        },
      });
      btn.addEventListener('click', () => {
        if (a.type === 'message') sendText(a.text);
        else if (a.type === 'uri') performAction({ type: 'uri', uri: a.linkUri });
        else if (a.type === 'clipboard') performAction(a);
      });
      wrap.append(btn);
    }
    if (m.altText) wrap.append(h('div', { class: 'alt', text: m.altText }));
    return wrap;
  }

  // ---- Flex messages
  const FX_TEXT = { xxs: 11, xs: 13, sm: 14, md: 16, lg: 19, xl: 22, xxl: 29, '3xl': 35, '4xl': 48, '5xl': 74 };
  const FX_SPACE = { none: 0, xs: 2, sm: 4, md: 8, lg: 12, xl: 16, xxl: 20 };
  const FX_IMG = { xxs: 40, xs: 60, sm: 80, md: 100, lg: 120, xl: 140, xxl: 160, '3xl': 180, '4xl': 200, '5xl': 220 };
  const FX_BUBBLE = { nano: 120, micro: 160, deca: 220, hecto: 241, kilo: 260, mega: 300, giga: 500 };
  const FX_BORDER = { none: 0, light: 0.5, normal: 1, medium: 2, 'semi-bold': 3, bold: 4 };
  const FX_RADIUS = { none: 0, xs: 2, sm: 4, md: 8, lg: 12, xl: 16, xxl: 20 };
  const GRAVITY = { top: 'flex-start', center: 'center', bottom: 'flex-end' };
  const ALIGN = { start: 'flex-start', center: 'center', end: 'flex-end' };

  function len(v, table) {
    if (v == null || v === '') return null;
    if (typeof v === 'number') return `${v}px`;
    if (table && Object.prototype.hasOwnProperty.call(table, v)) return `${table[v]}px`;
    if (/^-?\d+(\.\d+)?(px|%)$/.test(String(v))) return String(v);
    return null;
  }

  function renderFlexMessage(m) {
    const c = m.contents || {};
    if (c.type === 'carousel') {
      return h('div', { class: 'bubble wide scroller flex-carousel', title: m.altText || '' }, (c.contents || []).map(flexBubble));
    }
    return h('div', { class: 'bubble wide', title: m.altText || '' }, flexBubble(c));
  }

  function flexBubble(b) {
    const el = h('div', { class: 'fx-bubble', dir: b.direction === 'rtl' ? 'rtl' : null });
    const w = FX_BUBBLE[b.size || 'mega'];
    if (w) el.style.width = `${w}px`;
    const styles = b.styles || {};
    let first = true;
    for (const name of ['header', 'hero', 'body', 'footer']) {
      const comp = b[name];
      if (!comp) continue;
      const st = styles[name] || {};
      const block = h('div', { class: `fx-block fx-block-${name}` });
      if (st.backgroundColor) block.style.backgroundColor = st.backgroundColor;
      if (!first && st.separator) {
        block.classList.add('sep');
        if (st.separatorColor) block.style.borderTopColor = st.separatorColor;
      }
      const defaultPadding = { header: '20px', hero: '0px', body: '20px', footer: '10px' }[name];
      let node;
      if (comp.type === 'box') node = flexBox(comp, defaultPadding);
      else node = flexNode(comp, { layout: 'vertical' }, 0);
      if (comp.type === 'box') node.style.flex = '1 1 auto';
      block.append(node);
      el.append(block);
      first = false;
    }
    if (b.action) {
      el.classList.add('clickable');
      clickable(el, b.action);
    }
    return el;
  }

  function applyPadding(el, c, fallback) {
    const all = len(c.paddingAll, FX_SPACE) ?? fallback;
    if (all != null) el.style.padding = all;
    const map = { paddingTop: 'paddingTop', paddingBottom: 'paddingBottom', paddingStart: 'paddingInlineStart', paddingEnd: 'paddingInlineEnd' };
    for (const [k, css] of Object.entries(map)) {
      const v = len(c[k], FX_SPACE);
      if (v != null) el.style[css] = v;
    }
  }

  function flexBox(c, defaultPadding) {
    const layout = ['horizontal', 'baseline', 'vertical'].includes(c.layout) ? c.layout : 'vertical';
    const el = h('div', { class: `fx-box fx-${layout}` });
    const s = el.style;
    applyPadding(el, c, defaultPadding);
    if (c.backgroundColor) s.backgroundColor = c.backgroundColor;
    if (c.background && c.background.type === 'linearGradient') {
      const g = c.background;
      const stops = [g.startColor, g.centerColor ? `${g.centerColor} ${g.centerPosition || '50%'}` : null, g.endColor].filter(Boolean);
      s.backgroundImage = `linear-gradient(${g.angle || '0deg'}, ${stops.join(', ')})`;
    }
    const bw = len(c.borderWidth, FX_BORDER);
    if (bw || c.borderColor) {
      s.borderStyle = 'solid';
      s.borderWidth = bw || '1px';
      s.borderColor = c.borderColor || '#000';
    }
    const r = len(c.cornerRadius, FX_RADIUS);
    if (r) { s.borderRadius = r; s.overflow = 'hidden'; }
    for (const k of ['width', 'maxWidth', 'height', 'maxHeight']) {
      const v = len(c[k]);
      if (v) s[k] = v;
    }
    if (c.justifyContent) s.justifyContent = c.justifyContent;
    if (c.alignItems) s.alignItems = c.alignItems;
    (c.contents || []).forEach((child, i) => {
      const node = flexNode(child, c, i);
      if (node) el.append(node);
    });
    if (c.action) clickable(el, c.action);
    return el;
  }

  function flexNode(c, parent, index) {
    let el;
    switch (c.type) {
      case 'box': el = flexBox(c); break;
      case 'text': el = flexText(c); break;
      case 'image': el = flexImage(c); break;
      case 'icon': el = flexIcon(c); break;
      case 'button': el = flexButton(c); break;
      case 'separator':
        el = h('div', { class: 'fx-separator', role: 'separator' });
        if (c.color) el.style.backgroundColor = c.color;
        break;
      case 'filler': el = h('div', { class: 'fx-filler' }); break;
      case 'spacer': {
        const v = len(c.size, FX_SPACE) || '8px';
        el = h('div', { class: 'fx-spacer', style: { height: v, width: v, flex: '0 0 auto' } });
        break;
      }
      case 'video':
        el = h('div', { class: 'fx-video' }, c.altContent ? flexNode(c.altContent, { layout: 'vertical' }, 0) : imgFrame(c.previewUrl, c.aspectRatio || '16:9', 'cover'));
        break;
      case 'span': el = h('span', { text: c.text || '' }); break;
      default: return null;
    }
    placeInParent(el, c, parent || { layout: 'vertical' }, index);
    return el;
  }

  function placeInParent(el, c, parent, index) {
    const layout = parent.layout || 'vertical';
    const horiz = layout === 'horizontal' || layout === 'baseline';
    const s = el.style;
    const fixed = ['icon', 'spacer', 'separator'].includes(c.type);
    if (!fixed) {
      let f = c.flex;
      if (f == null) f = horiz || c.type === 'filler' ? 1 : 0;
      s.flex = f > 0 ? (horiz ? `${f} 1 0%` : `${f} 1 auto`) : '0 0 auto';
    }
    let margin = null;
    if (c.margin != null) margin = len(c.margin, FX_SPACE);
    else if (index > 0 && c.position !== 'absolute') margin = len(parent.spacing, FX_SPACE);
    if (margin && c.position !== 'absolute') s[horiz ? 'marginInlineStart' : 'marginTop'] = margin;
    if (c.position === 'absolute') s.position = 'absolute';
    const offsets = { offsetTop: 'top', offsetBottom: 'bottom', offsetStart: 'insetInlineStart', offsetEnd: 'insetInlineEnd' };
    for (const [k, css] of Object.entries(offsets)) {
      const v = len(c[k], FX_SPACE);
      if (v != null) {
        if (c.position !== 'absolute' && !s.position) s.position = 'relative';
        s[css] = v;
      }
    }
    if (c.gravity && layout !== 'baseline' && GRAVITY[c.gravity]) {
      if (horiz) s.alignSelf = GRAVITY[c.gravity];
    }
  }

  function flexText(c) {
    const el = h('div', { class: `fx-text ${c.wrap ? 'fx-wrap' : 'fx-nowrap'}` });
    const s = el.style;
    const size = len(c.size, FX_TEXT) || '16px';
    s.fontSize = size;
    if (c.weight === 'bold') s.fontWeight = '700';
    s.color = c.color || '#111111';
    if (c.align) s.textAlign = c.align;
    if (c.style === 'italic') s.fontStyle = 'italic';
    if (c.decoration && c.decoration !== 'none') s.textDecoration = c.decoration;
    if (c.lineSpacing) {
      const ls = len(c.lineSpacing);
      if (ls) s.lineHeight = `calc(1.4em + ${ls})`;
    }
    if (c.wrap && c.maxLines > 0) {
      s.display = '-webkit-box';
      s.webkitBoxOrient = 'vertical';
      s.webkitLineClamp = String(c.maxLines);
      s.overflow = 'hidden';
    }
    if (Array.isArray(c.contents) && c.contents.length) {
      for (const sp of c.contents) {
        const span = h('span', { text: sp.text || '' });
        if (sp.size) span.style.fontSize = len(sp.size, FX_TEXT) || '';
        if (sp.weight === 'bold') span.style.fontWeight = '700';
        if (sp.color) span.style.color = sp.color;
        if (sp.style === 'italic') span.style.fontStyle = 'italic';
        if (sp.decoration && sp.decoration !== 'none') span.style.textDecoration = sp.decoration;
        el.append(span);
      }
    } else {
      el.textContent = c.text || '';
    }
    if (c.action) clickable(el, c.action);
    return el;
  }

  function flexImage(c) {
    const el = h('div', { class: 'fx-image' });
    if (c.align && ALIGN[c.align]) el.style.justifyContent = ALIGN[c.align];
    if (c.gravity && GRAVITY[c.gravity]) el.style.alignItems = GRAVITY[c.gravity];
    const frame = imgFrame(c.url, c.aspectRatio || '1:1', c.aspectMode === 'cover' ? 'cover' : 'contain', c.backgroundColor);
    const size = c.size === 'full' ? '100%' : (len(c.size, FX_IMG) || '100px');
    frame.style.width = size;
    el.append(frame);
    if (c.action) clickable(el, c.action);
    return el;
  }

  function flexIcon(c) {
    const px = (FX_TEXT[c.size] || parseFloat(c.size) || 16);
    const [w, hh] = String(c.aspectRatio || '1:1').split(':').map(Number);
    const img = h('img', { class: 'fx-icon', alt: '', style: { height: `${px}px`, width: `${px * ((w > 0 && hh > 0) ? w / hh : 1)}px` } });
    img.addEventListener('error', () => img.classList.add('broken'));
    if (c.url) img.src = c.url;
    return img;
  }

  function flexButton(c) {
    const style = ['primary', 'secondary', 'link'].includes(c.style) ? c.style : 'link';
    const height = c.height === 'sm' ? 'sm' : 'md';
    const b = h('button', { type: 'button', class: `fx-button fx-btn-${style} fx-h-${height}` }, actionLabel(c.action));
    if (c.color) {
      if (style === 'link') b.style.color = c.color;
      else b.style.backgroundColor = c.color;
    }
    b.addEventListener('click', (ev) => { ev.stopPropagation(); performAction(c.action); });
    return b;
  }

  // ---------------------------------------------------------------- quick replies
  const QR_ICONS = { camera: 'camera', cameraRoll: 'image', location: 'pin', datetimepicker: 'calendar', uri: 'link', clipboard: 'clipboard' };

  function renderQuickReplies() {
    const bar = $('quick-replies');
    const last = state.entries[state.entries.length - 1];
    const items = last && last.side === 'bot' && last.message && last.message.quickReply && last.message.quickReply.items;
    if (!items || !items.length || state.qrDismissedFor === last.id || (currentUser() && currentUser().blocked)) {
      bar.hidden = true;
      bar.replaceChildren();
      return;
    }
    bar.replaceChildren(...items.map((it) => {
      const a = it.action || {};
      const label = a.label || actionLabel(a) || { camera: 'カメラ', cameraRoll: 'カメラロール', location: '位置情報' }[a.type] || '';
      const lead = it.imageUrl
        ? h('img', { src: it.imageUrl, alt: '', onerror: (ev) => ev.target.remove() })
        : (QR_ICONS[a.type] ? h('span', { class: 'chip-icon', 'aria-hidden': 'true' }, icon(QR_ICONS[a.type], 17)) : null);
      return h('button', {
        type: 'button', class: 'chip',
        onclick: () => { state.qrDismissedFor = last.id; renderQuickReplies(); performAction(a); },
      }, lead, h('span', { text: label }));
    }));
    bar.hidden = false;
  }

  // ---------------------------------------------------------------- rich menu
  let richMenuInFlight = false;
  async function refreshRichMenu() {
    const userId = state.userId;
    if (!userId || richMenuInFlight) return;
    richMenuInFlight = true;
    try {
      const res = await fetch(`${API}/users/${enc(userId)}/richmenu`, { cache: 'no-store' });
      if (userId !== state.userId) return;
      let menu = null;
      if (res.ok) menu = await res.json();
      else if (res.status !== 404) throw new Error(`HTTP ${res.status}`);
      const key = JSON.stringify(menu);
      if (key !== state.richMenuKey) {
        const firstShow = !state.richMenu && menu;
        state.richMenu = menu;
        state.richMenuKey = key;
        if (firstShow) state.menuOpen = !!menu.selected;
        renderRichMenu();
      }
    } catch (e) {
      // Menus are optional: report quietly once per failure streak.
      if (!refreshRichMenu.warned) toast(`リッチメニューを取得できませんでした（${e.message}）`);
      refreshRichMenu.warned = true;
      return;
    } finally {
      richMenuInFlight = false;
    }
    refreshRichMenu.warned = false;
  }

  function renderRichMenu() {
    const rm = state.richMenu;
    const bar = $('chat-bar');
    const panel = $('rich-menu');
    const menuBtn = $('menu-btn');
    if (!rm) {
      bar.hidden = true;
      panel.hidden = true;
      menuBtn.hidden = true;
      panel.replaceChildren();
      return;
    }
    bar.hidden = false;
    menuBtn.hidden = false;
    $('chat-bar-text').textContent = rm.chatBarText || 'メニュー';
    bar.setAttribute('aria-expanded', state.menuOpen ? 'true' : 'false');
    menuBtn.setAttribute('aria-label', state.menuOpen ? 'メニューを閉じる' : 'メニューを開く');
    panel.hidden = !state.menuOpen;
    if (panel.dataset.key === state.richMenuKey && panel.childElementCount) return;
    panel.dataset.key = state.richMenuKey;
    const size = rm.size || { width: 2500, height: 1686 };
    const canvas = h('div', { class: 'rm-canvas', style: { paddingBottom: `${(size.height / size.width) * 100}%` } });
    // The emulator says whether the menu has an image (imageUrl, null when none was uploaded).
    const imageUrl = 'imageUrl' in rm ? rm.imageUrl : (rm.richMenuId ? `${API}/richmenus/${enc(rm.richMenuId)}/image` : null);
    if (imageUrl) {
      const img = h('img', { alt: '' });
      img.addEventListener('load', () => canvas.classList.add('has-image'));
      img.addEventListener('error', () => img.remove());
      img.src = String(imageUrl).replace(/^\/(?=_emulator\/)/, '');
      canvas.append(img);
    }
    for (const area of rm.areas || []) {
      const b = area.bounds || {};
      const label = actionLabel(area.action) || '（ラベルなし）';
      const btn = h('button', {
        type: 'button', class: 'rm-area', 'aria-label': label, title: label,
        style: {
          left: `${(b.x / size.width) * 100}%`, top: `${(b.y / size.height) * 100}%`,
          width: `${(b.width / size.width) * 100}%`, height: `${(b.height / size.height) * 100}%`,
        },
        onclick: () => performAction(area.action),
      }, h('span', { class: 'rm-label' }, h('span', { class: 'rm-icon', 'aria-hidden': 'true' }), label));
      canvas.append(btn);
    }
    panel.replaceChildren(canvas);
  }

  function toggleMenu(open) {
    state.menuOpen = open ?? !state.menuOpen;
    if (state.menuOpen) $('sticker-picker').hidden = true;
    renderRichMenu();
    scrollToBottom(false);
  }

  // ---------------------------------------------------------------- input bar
  function updateSendButton() {
    const input = $('message-input');
    $('send-btn').disabled = input.disabled || !input.value.trim();
  }

  function autoGrow() {
    const t = $('message-input');
    t.style.height = 'auto';
    t.style.height = `${Math.min(t.scrollHeight, 110)}px`;
  }

  function submitInput() {
    const input = $('message-input');
    const text = input.value;
    if (!text.trim() || input.disabled) return;
    input.value = '';
    autoGrow();
    updateSendButton();
    sendText(text);
    input.focus();
  }

  function buildStickerPicker() {
    $('sticker-picker').replaceChildren(...STICKERS.map((s) => h('button', {
      type: 'button', class: 'sticker-choice', 'aria-label': `スタンプ「${s.caption}」`, title: s.caption,
      onclick: () => { $('sticker-picker').hidden = true; sendSticker(s); },
    }, stickerArt(s))));
  }

  // ---------------------------------------------------------------- wiring
  function wire() {
    $('account-name').textContent = ACCOUNT_NAME;
    document.title = `LINE チャットシミュレーター｜${ACCOUNT_NAME}`;
    emptyTemplate = $('chat-empty').cloneNode(true);
    const chat = $('chat');
    chat.addEventListener('scroll', () => { pinned = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 40; }, { passive: true });
    resizeWatch.observe(chat);

    $('user-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const input = $('new-user-name');
      const name = input.value.trim();
      if (!name) return;
      const btn = $('create-user');
      btn.disabled = true;
      try {
        await createUser(name);
        input.value = '';
      } catch (e) {
        toast(e.message);
      } finally {
        btn.disabled = false;
      }
    });
    $('follow-toggle').addEventListener('click', toggleFollow);
    $('banner-action').addEventListener('click', toggleFollow);
    $('clear-log').addEventListener('click', () => {
      if (!state.userId) return;
      state.entries = [];
      state.hiddenUpto = state.lastSeq;
      saveLocal();
      renderAll();
    });

    const input = $('message-input');
    input.addEventListener('input', () => { autoGrow(); updateSendButton(); });
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
        ev.preventDefault();
        submitInput();
      }
    });
    $('input-bar').addEventListener('submit', (ev) => { ev.preventDefault(); submitInput(); });

    $('sticker-btn').addEventListener('click', () => {
      if (!currentUser()) { toast('先にユーザーを選択してください'); return; }
      const p = $('sticker-picker');
      p.hidden = !p.hidden;
      if (!p.hidden && state.menuOpen) toggleMenu(false);
    });
    $('image-btn').addEventListener('click', () => {
      if (!currentUser()) { toast('先にユーザーを選択してください'); return; }
      $('image-file').click();
    });
    $('image-file').addEventListener('change', (ev) => {
      const f = ev.target.files && ev.target.files[0];
      ev.target.value = '';
      sendImageFile(f);
    });
    $('location-btn').addEventListener('click', openLocationDialog);
    $('location-cancel').addEventListener('click', () => $('location-dialog').close());
    $('location-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const loc = {
        title: $('loc-title').value.trim(),
        address: $('loc-address').value.trim(),
        latitude: Number($('loc-lat').value),
        longitude: Number($('loc-lng').value),
      };
      if (!Number.isFinite(loc.latitude) || !Number.isFinite(loc.longitude)) { toast('緯度・経度を数値で入力してください'); return; }
      $('location-dialog').close();
      sendLocation(loc);
    });

    $('datetime-cancel').addEventListener('click', () => { pendingPicker = null; $('datetime-dialog').close(); });
    $('datetime-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('datetime-input').value;
      if (!v || !pendingPicker) return;
      const { action, mode } = pendingPicker;
      pendingPicker = null;
      $('datetime-dialog').close();
      sendPostback(action.data, { [mode]: v });
    });

    $('chat-bar').addEventListener('click', () => toggleMenu());
    $('menu-btn').addEventListener('click', () => toggleMenu());

    buildStickerPicker();

    const tick = () => { $('clock').textContent = fmtTime(Date.now()); };
    tick();
    setInterval(tick, 15000);
    setInterval(() => { if (!document.hidden) { refreshUsers({ quiet: true }); refreshRichMenu(); } }, 10000);
  }

  let started = false;
  async function start() {
    wire();
    const ok = await refreshUsers();
    started = true;
    let saved = null;
    try { saved = localStorage.getItem(LS_USER); } catch (_e) { /* ignore */ }
    if (ok) {
      const pick = state.users.some((u) => u.userId === saved) ? saved : (state.users.length ? state.users[state.users.length - 1].userId : null);
      await selectUser(pick);
    }
  }

  // Exposed for debugging and automated tests.
  window.simulator = { state, refreshUsers, selectUser, refreshRichMenu, performAction };

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
