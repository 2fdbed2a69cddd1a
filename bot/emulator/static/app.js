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

  // Drawing LINE messages is shared with the console's template preview (static/line-preview.js).
  const { STICKERS, h, icon, stickerArt, hashCode, actionLabel } = window.LinePreview;
  const preview = window.LinePreview.create({
    onAction: (action) => performAction(action),
    mentionName: (userId) => {
      const u = state.users.find((x) => x.userId === userId);
      return u ? u.displayName : null;
    },
  });

  // ---------------------------------------------------------------- helpers
  const $ = (id) => document.getElementById(id);

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
      content = preview.renderMessage(e.message || {});
    } catch (err) {
      console.error(err);
      content = h('div', { class: 'placeholder' }, h('span', { class: 'ph-icon' }, icon('warning')), h('span', { text: `表示できないメッセージです（${e.message && e.message.type}）` }));
    }
    const meta = h('div', { class: 'meta' });
    let row;
    if (e.side === 'bot') {
      const cont = prev && prev.side === 'bot' && e.at - prev.at < 60000;
      row = h('div', { class: `row bot${cont ? ' cont' : ''}`, 'data-seq': e.seq, 'data-via': e.via || '', 'data-type': (e.message && e.message.type) || '' },
        cont ? h('div', { class: 'avatar', 'aria-hidden': 'true' }) : window.LinePreview.avatar(),
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
