/* LINE のメッセージを LINE アプリのように描く部品。チャットシミュレーター（エミュレーターの /）と
 * 管理画面のテンプレート編集のプレビュー（/admin/static/line-preview.js）で共用する。
 * 外部ライブラリなし・ビルドなし。メッセージの中身は DOM API（textContent）でのみ描画する。
 *
 *   const preview = LinePreview.create({ onAction: (action) => …, mentionName: (userId) => … });
 *   bubbleParent.append(preview.renderMessage(message));   // テキスト・画像・スタンプ・テンプレート・Flex…
 *   LinePreview.renderChat(container, messages, { accountName });   // ボットの発言として並べる
 *
 * 見た目は line-preview.css（.row / .bubble / .fx-* など）。 */
(function (global) {
  'use strict';

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

  function svg(markup) {
    // Static, trusted markup only.
    const t = document.createElement('template');
    t.innerHTML = markup;
    return t.content.firstChild;
  }

  function hashCode(s) {
    let x = 0;
    for (const ch of String(s)) x = (x * 31 + ch.codePointAt(0)) | 0;
    return Math.abs(x);
  }

  const enc = encodeURIComponent;

  function actionLabel(a) {
    if (!a) return '';
    return a.label || a.displayText || a.text || a.data || a.uri || '';
  }

  // The bot's round avatar (a house on LINE green).
  function avatar() {
    return h('div', { class: 'avatar', 'aria-hidden': 'true' },
      svg('<svg viewBox="0 0 36 36" width="36" height="36"><circle cx="18" cy="18" r="18" fill="#06c755"/><path d="M9 17.5 18 10l9 7.5" fill="none" stroke="#fff" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/><path d="M11.5 16v10h13V16" fill="#fff"/><rect x="16" y="20" width="4" height="6" rx="1" fill="#06c755"/></svg>'));
  }

  // ---------------------------------------------------------------- the renderer
  // `onAction(action)`: a tap on a button, a Flex component with an action, an imagemap area.
  // `mentionName(userId)`: the display name for a textV2 mention (null: 「ユーザー」).
  function create(options = {}) {
    const onAction = typeof options.onAction === 'function' ? options.onAction : () => {};
    const mentionName = typeof options.mentionName === 'function' ? options.mentionName : () => null;

    function clickable(el, action) {
      if (!action) return el;
      el.classList.add('fx-clickable');
      el.setAttribute('role', el.getAttribute('role') || 'button');
      el.tabIndex = 0;
      if (!el.getAttribute('aria-label') && action.label) el.setAttribute('aria-label', action.label);
      el.addEventListener('click', (ev) => {
        if (ev.target.closest('button, a') && ev.target.closest('button, a') !== el) return;
        ev.stopPropagation();
        onAction(action);
      });
      el.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onAction(action); }
      });
      return el;
    }

    function actionButton(action, cls) {
      return h('button', { type: 'button', class: cls, onclick: () => onAction(action) }, actionLabel(action));
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
            const name = s.mentionee ? mentionName(s.mentionee.userId) : null;
            return `@${name || 'ユーザー'}`;
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

    function renderMessage(m) {
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
          if (a.type === 'message') onAction({ type: 'message', text: a.text, label: a.label });
          else if (a.type === 'uri') onAction({ type: 'uri', uri: a.linkUri });
          else if (a.type === 'clipboard') onAction(a);
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
      b.addEventListener('click', (ev) => { ev.stopPropagation(); onAction(c.action); });
      return b;
    }

    return { renderMessage, clickable, actionButton };
  }

  // Messages as the bot's side of a chat: the avatar and name on the first, bubbles below.
  function renderChat(container, messages, options = {}) {
    const renderer = create(options);
    const name = options.accountName || 'ふるさと住民登録';
    const rows = (messages || []).map((m, i) => {
      let content;
      try {
        content = renderer.renderMessage(m || {});
      } catch (err) {
        console.error(err);
        content = h('div', { class: 'placeholder' }, h('span', { class: 'ph-icon' }, icon('warning')),
          h('span', { text: `表示できないメッセージです（${m && m.type}）` }));
      }
      const cont = i > 0;
      return h('div', { class: `row bot${cont ? ' cont' : ''}`, 'data-type': (m && m.type) || '' },
        cont ? h('div', { class: 'avatar', 'aria-hidden': 'true' }) : avatar(),
        h('div', { class: 'col' }, cont ? null : h('div', { class: 'bot-name', text: name }), h('div', { class: 'line' }, content)));
    });
    container.replaceChildren(...rows);
    return rows;
  }

  global.LinePreview = { STICKERS, h, svg, icon, stickerArt, hashCode, actionLabel, avatar, create, renderChat };
})(window);
