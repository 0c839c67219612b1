// chatgate widget: one <script src="https://HOST/widget.js" data-channel-id="UUID" async>
// per channel. Plain JavaScript, no dependencies; the server embeds this file
// with widget.css (put in place of "__CHATGATE_CSS__"), minified at build
// time (build.rs), and serves it compressed at /widget.js.
// Message data is only ever put into the page as text (textContent/append).
(() => {
'use strict';
const G = window.chatgate;
if (G && G._scan) return G._scan();
const CSS = "__CHATGATE_CSS__";

const L = {
  en: {
    open: 'Open chat', close: 'Close chat', minimize: 'Minimize chat', ph: 'Write a message…', send: 'Send',
    title: 'Chat with us', hello: 'Hi there! How can we help you today?', online: 'We typically reply in a few minutes',
    away: 'We are away right now. Leave a message and we will reply as soon as we are back.', awayShort: 'Away, leave a message',
    closed: 'This conversation was closed. Write to us again to reopen it.', typing: '{n} is typing…', agent: 'Agent', bot: 'Bot',
    fail: 'Not sent.', retry: 'Retry', sending: 'Sending', sent: 'Delivered', read: 'Read', deleted: 'Message deleted',
    reconnecting: 'Connection lost, reconnecting…', gone: 'Chat is unavailable right now.', from: 'New message from {n}',
    unread: '{n} unread', by: 'Powered by chatgate', more: 'New message', attach: 'Attach a file', drop: 'Drop files here',
    rm: 'Remove {f}', big: '{f} is too large.', type: '{f}: this type of file is not allowed.',
    upx: '{f} could not be uploaded.', many: 'At most 10 files.', u: ['B', 'KB', 'MB', 'GB'],
    rate: 'How was this conversation?', stars: ['Very bad', 'Bad', 'Okay', 'Good', 'Excellent'],
    cm: 'Add a comment (optional)', thx: 'Thanks for your feedback',
    back: ' We are back {t}.',
    p: { name: 'Name', email: 'Email', question: 'Your question' }, go: 'Start chat', req: '{f} is required.', bad: 'Invalid email address.',
    nc: 'New conversation', pc: 'Previous conversations', blk: 'You can no longer send messages in this chat.',
    eh: "We'll reply here and by email", em: 'Your email (optional)', ok: 'Save',
    tr: 'Email me the transcript', trd: 'Transcript sent by email',
    n: {
      agent_joined: '{agent} joined the conversation', agent_left: '{agent} left the conversation',
      transferred: '{from} handed the conversation to {agent}', closed: 'Conversation closed', reopened: 'Conversation reopened',
    },
  },
  fr: {
    open: 'Ouvrir le chat', close: 'Fermer le chat', minimize: 'Réduire le chat', ph: 'Écrivez un message…', send: 'Envoyer',
    title: 'Discutons', hello: 'Bonjour ! Comment pouvons-nous vous aider ?', online: 'Nous répondons en général en quelques minutes',
    away: 'Nous sommes absents pour le moment. Laissez un message, nous vous répondrons dès notre retour.', awayShort: 'Absents, laissez un message',
    closed: 'Cette conversation a été fermée. Écrivez-nous pour la rouvrir.', typing: '{n} écrit…', agent: 'Conseiller', bot: 'Robot',
    fail: 'Non envoyé.', retry: 'Réessayer', sending: 'Envoi', sent: 'Remis', read: 'Lu', deleted: 'Message supprimé',
    reconnecting: 'Connexion perdue, reconnexion…', gone: 'Le chat est indisponible pour le moment.', from: 'Nouveau message de {n}',
    unread: '{n} non lus', by: 'Propulsé par chatgate', more: 'Nouveau message', attach: 'Joindre un fichier', drop: 'Déposez vos fichiers ici',
    rm: 'Retirer {f}', big: '{f} est trop volumineux.', type: "{f} : ce type de fichier n'est pas autorisé.",
    upx: "{f} n'a pas pu être envoyé.", many: 'Au plus 10 fichiers.', u: ['o', 'Ko', 'Mo', 'Go'],
    rate: "Comment s'est passée cette conversation ?", stars: ['Très mauvais', 'Mauvais', 'Correct', 'Bien', 'Excellent'],
    cm: 'Ajouter un commentaire (facultatif)', thx: 'Merci pour votre avis',
    back: ' Retour le {t}.',
    p: { name: 'Nom', email: 'E-mail', question: 'Votre question' }, go: 'Commencer', req: '{f} : obligatoire.', bad: 'Adresse e-mail invalide.',
    nc: 'Nouvelle conversation', pc: 'Conversations précédentes', blk: 'Vous ne pouvez plus envoyer de messages dans ce chat.',
    eh: 'Nous répondrons ici et par e-mail', em: 'Votre e-mail (facultatif)', ok: 'Enregistrer',
    tr: "M'envoyer la conversation par e-mail", trd: 'Conversation envoyée par e-mail',
    n: {
      agent_joined: '{agent} a rejoint la conversation', agent_left: '{agent} a quitté la conversation',
      transferred: '{from} a confié la conversation à {agent}', closed: 'Conversation fermée', reopened: 'Conversation rouverte',
    },
  },
};

const P = (d) => '<svg viewBox="0 0 24 24" aria-hidden="true">' + d + '</svg>';
const ICON = {
  chat: P('<path d="M21 11.5a8.4 8.4 0 0 1-9 8.4 9 9 0 0 1-3.9-.9L3 20.5l1.5-4.6A8 8 0 0 1 3 11.5 8.5 8.5 0 0 1 12 3a8.5 8.5 0 0 1 9 8.5z"/>'),
  x: P('<path d="M18 6 6 18M6 6l12 12"/>'),
  down: P('<path d="m6 9 6 6 6-6"/>'),
  send: P('<path d="M12 19V5M5 12l7-7 7 7"/>'),
  clip: P('<path d="m20.5 11.5-8.3 8.3a5.3 5.3 0 0 1-7.5-7.5l8.6-8.6a3.5 3.5 0 0 1 5 5l-8.6 8.6a1.8 1.8 0 0 1-2.5-2.5l7.9-7.9"/>'),
  file: P('<path d="M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8zM14 3v5h5"/>'),
  star: P('<path d="m12 2.8 2.8 5.8 6.3.9-4.6 4.4 1.1 6.3-5.6-3-5.6 3 1.1-6.3-4.6-4.4 6.3-.9z"/>'),
  one: '<svg viewBox="0 0 16 12" aria-hidden="true"><path d="m2 6.5 3 3 7-7"/></svg>',
  two: '<svg viewBox="0 0 16 12" aria-hidden="true"><path d="m1 6.5 3 3 7-7M7.5 9.5l7-7"/></svg>',
};

// Storage that never throws: falls back to memory where localStorage is denied.
const mem = {};
const store = {
  get: (k) => { if (k in mem) return mem[k]; try { return localStorage.getItem(k); } catch (e) { return null; } },
  set: (k, v) => { try { localStorage.setItem(k, v); delete mem[k]; } catch (e) { mem[k] = String(v); } },
  del: (k) => { delete mem[k]; try { localStorage.removeItem(k); } catch (e) { /* denied */ } },
};

const h = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
};
const icon = (name, cls) => {
  const s = h('span', 'i' + (cls ? ' ' + cls : ''));
  s.innerHTML = ICON[name]; // constant markup, never message data
  return s;
};
const rid = () => (crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2));
const httpUrl = (u, b) => {
  try {
    const p = new URL(u, b);
    return p.protocol === 'https:' || p.protocol === 'http:' ? p.href : null;
  } catch (e) {
    return null;
  }
};

// Text with clickable http(s) links; everything else stays plain text.
// What the page tells agents about the visitor (clipped to the server's
// bounds, so a long URL never costs the visitor the chat).
const cut = (v, n) => (v ? String(v).replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, n) || undefined : undefined);
const pageCtx = () => {
  let tz;
  try {
    tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    /* older browsers */
  }
  return {
    url: httpUrl(location.href) ? cut(location.href, 2048) : undefined,
    title: cut(document.title, 500),
    referrer: httpUrl(document.referrer || '') ? cut(document.referrer, 2048) : undefined,
    language: cut(navigator.language, 35),
    time_zone: cut(tz, 64),
    utc_offset_minutes: -new Date().getTimezoneOffset(),
  };
};
const EM = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;
const visitorOf = (v) => {
  const email = cut(v && v.email, 320);
  return { name: cut(v && v.name, 200), email: email && EM.test(email) ? email : undefined };
};
// Markdown, the subset of issue 17: **bold**, *italic* or _italic_, `code`,
// ``` blocks, [links](https://…) and bare URLs, "- " and "1. " lists. Built
// from elements and text nodes only: no markup of a message reaches the page,
// and a link goes only to http(s) or mailto. Markers that do not pair stay text.
// `b`: the base of a relative URL (the server's, for a file); none in text.
const link = (u, b) => {
  try {
    const p = new URL(u, b);
    if (/^(https?|mailto):$/.test(p.protocol)) {
      const a = h('a');
      a.href = p.href;
      a.target = '_blank';
      a.rel = 'noopener noreferrer nofollow';
      return a;
    }
  } catch (e) {
    /* not an absolute URL */
  }
};
const INL = /`([^`\n]+)`|\*\*(?=\S)(.*?\S)\*\*|\*(?=[^\s*])(.*?[^\s*])\*|\b_(?=\S)(.*?\S)_\b|!?\[([^\]\n]+)\]\(\s*(\S+?)\s*\)|\bhttps?:\/\/[^\s<>"]+/;
// `nl`: inside a link, where no other link may start.
const inl = (el, s, nl) => {
  for (let m; (m = INL.exec(s)); ) {
    let n = m[0];
    let x = n;
    const em = m[2] || m[3] || m[4];
    if (m[1]) x = h('code', 0, m[1]);
    else if (em) inl((x = h(m[2] ? 'strong' : 'em')), em, nl);
    else if (!nl) {
      // A bare URL ends before trailing punctuation; an image stays text.
      const a = n[0] !== '!' && link(m[6] || (n = n.replace(/[.,;:!?'")\]}*_]+$/, '')));
      if (a) m[5] ? inl(a, m[5], 1) : a.append(n);
      x = a || n;
    }
    el.append(s.slice(0, m.index), x);
    s = s.slice(m.index + n.length);
  }
  el.append(s);
};
const md = (el, s) => {
  const ls = s.split('\n');
  let p = [];
  let list;
  const flush = () => {
    inl(el, p.join('\n').replace(/^\n+|\n+$/g, ''));
    p = [];
  };
  for (let i = 0, m; i < ls.length; i++) {
    if (/^ {0,3}```/.test(ls[i])) {
      flush();
      list = 0;
      const c = [];
      while (++i < ls.length && !/^ {0,3}```\s*$/.test(ls[i])) c.push(ls[i]);
      const pre = h('pre');
      pre.append(h('code', 0, c.join('\n')));
      el.append(pre);
    } else if ((m = /^ {0,3}(?:[-*+]|(\d{1,9})[.)]) +(\S.*)/.exec(ls[i]))) {
      flush();
      const o = m[1] ? 'OL' : 'UL';
      if (!list || list.tagName !== o) {
        el.append((list = h(o)));
        if (m[1] > 1) list.start = m[1];
      }
      const li = h('li');
      inl(li, m[2]);
      list.append(li);
    } else {
      // A blank line between two items keeps them in one list.
      if (ls[i].trim()) list = 0;
      p.push(ls[i]);
    }
  }
  flush();
};
const size = (n, t, lang) => {
  let i = 0;
  for (; n >= 1024 && i < 3; i++) n /= 1024;
  return n.toLocaleString(lang, { maximumFractionDigits: i && n < 10 ? 1 : 0 }) + ' ' + t.u[i];
};

// A system notice in the visitor's language (desk-api.md, "Notices"); its
// (English) content for an unknown type or a missing parameter.
const noticeText = (m, t) => {
  const n = m.notice || {};
  const f = t.n[n.type];
  let ok = typeof f === 'string';
  const s = ok && f.replace(/\{(\w+)\}/g, (_, k) => {
    const v = n.params && n.params[k];
    if (typeof v !== 'string' || !v) ok = false;
    return v;
  });
  return ok ? s : m.content;
};

// STOMP 1.2 frames (visitor-api.md, "WebSocket /ws.chatplugin").
const unesc = (v) => v.replace(/\\([nrc\\])/g, (_, c) => ({ n: '\n', r: '\r', c: ':', '\\': '\\' })[c]);
const parse = (s) => {
  const end = /\r?\n\r?\n/.exec(s);
  const head = (end ? s.slice(0, end.index) : s).split(/\r?\n/);
  const cmd = head.shift();
  const hd = {};
  for (const l of head) {
    const c = l.indexOf(':');
    const k = c > 0 && unesc(l.slice(0, c));
    if (k && !(k in hd)) hd[k] = unesc(l.slice(c + 1));
  }
  return { cmd, hd, body: end ? s.slice(end.index + end[0].length) : '' };
};

const luminance = (hex) => {
  const ch = [1, 3, 5].map((i) => {
    const v = parseInt(hex.slice(i, i + 2), 16) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
};

const widgets = [];

class Widget {
  constructor(script, index) {
    this.id = script.dataset.channelId;
    this.base = script.src.replace(/\/widget\.js([?#].*)?$/, '');
    const lang = (script.dataset.locale || document.documentElement.lang || 'en').slice(0, 2).toLowerCase();
    this.lang = L[lang] ? lang : 'en';
    this.t = L[this.lang];
    this.key = 'chatgate:' + this.id;
    this.msgs = new Map(); // message id, or "c:" + client_message_id while sending -> {m, el}
    this.lastSeq = 0; // highest seq received: the since-seq of the next SUBSCRIBE
    this.readUpTo = 0; // the agents read the visitor's messages up to here
    this.readSent = 0;
    this.seen = +store.get(this.key + ':seen') || 0; // the visitor saw messages up to here
    this.fns = {};
    this.attempt = 0;
    this.isOpen = false;
    // A customer the site signed in: data-identity-id, -hash (HMAC-SHA256
    // by the channel's secret, computed by the site's server), -name, -email.
    const d = script.dataset;
    if (d.identityId) this.idn = { id: d.identityId, hash: d.identityHash, name: d.identityName, email: d.identityEmail };
    this.build(index, d.color);
    // An email's link: the conversation to resume is in the fragment.
    const m = /chatgate-resume=([\w.-]+)/.exec(location.hash);
    if (m) {
      store.set(this.key, m[1]);
      history.replaceState(null, '', location.href.split('#')[0]);
    }
    // A returning (or signed-in) visitor connects at once, to show replies that came while away.
    if (store.get(this.key) || this.idn) this.start();
    if (m) this.open();
  }

  build(index, color) {
    const t = this.t;
    const host = (this.host = document.createElement('chatgate-widget'));
    // Inline !important beats any page rule, `* { display: none !important }` included.
    host.setAttribute('style', 'all:initial!important;display:block!important;position:fixed!important;' +
      'right:0!important;bottom:0!important;width:0!important;height:0!important;z-index:2147483000!important');
    const root = host.attachShadow({ mode: 'open' });
    root.append(h('style', 0, CSS));
    const w = (this.w = h('div', 'w'));
    w.style.setProperty('--x', 20 + index * 76 + 'px');
    if (/^#[0-9a-f]{6}$/i.test(color || '')) this.color(color);

    const p = (this.p = h('div', 'p'));
    p.setAttribute('role', 'dialog');
    p.setAttribute('aria-label', t.title);
    p.id = 'p';
    const hd = h('div', 'hd');
    this.av = h('div', 'av');
    const ti = h('div', 'ti');
    this.nm = h('div', 'nm', t.title);
    this.st = h('div', 'st', t.online);
    ti.append(this.nm, this.st);
    const x = h('button', 'cl');
    x.type = 'button';
    x.setAttribute('aria-label', t.minimize);
    x.append(icon('down'));
    x.onclick = () => this.close();
    hd.append(this.av, ti, x);
    this.bar = h('div', 'bar');
    this.bar.setAttribute('role', 'status');
    this.bar.hidden = true;
    this.log = h('div', 'log');
    this.log.setAttribute('role', 'log');
    this.log.setAttribute('aria-live', 'off');
    this.log.tabIndex = 0;
    // Follows the conversation while the visitor is at (or near) the bottom;
    // otherwise new messages raise a "new message" marker.
    this.stick = true;
    this.log.onscroll = () => {
      this.stick = this.gap() < 40;
      if (this.stick) this.more.hidden = true;
    };
    new ResizeObserver(() => this.stick && this.scroll(true)).observe(this.log);
    const lw = h('div', 'lw');
    const mw = h('div', 'mw');
    mw.setAttribute('role', 'status');
    const more = (this.more = h('button', 'more', t.more));
    more.type = 'button';
    more.hidden = true;
    more.append(icon('down'));
    more.onclick = () => {
      this.scroll(true);
      this.log.focus({ preventScroll: true });
    };
    mw.append(more);
    lw.append(this.log, mw);
    this.hello = h('div', 'm l hello');
    this.helloText = h('div', 'b', t.hello);
    const col = h('div', 'col');
    col.append(this.helloText);
    this.hello.append(h('div', 'av'), col);
    this.log.append(this.hello);
    this.ty = h('div', 'ty');
    this.ty.hidden = true;
    this.tyText = h('span');
    const dots = h('span', 'dots');
    dots.append(h('i'), h('i'), h('i'));
    this.ty.append(dots, this.tyText);
    // One status line (closed wins over away), never one note per state.
    this.note = h('p', 'note');
    this.note.hidden = true;
    const cmp = h('form', 'cmp');
    const ta = (this.ta = h('textarea'));
    ta.rows = 1;
    ta.placeholder = t.ph;
    ta.setAttribute('aria-label', t.ph);
    ta.maxLength = 4096;
    const sd = (this.sd = h('button', 'sd'));
    sd.type = 'submit';
    sd.disabled = true;
    sd.setAttribute('aria-label', t.send);
    sd.append(icon('send'));
    // Files: the paperclip, a drop on the panel or a pasted screenshot;
    // each upload is a chip above the text box until the message is sent.
    const fi = h('input');
    fi.type = 'file';
    fi.multiple = fi.hidden = true;
    fi.onchange = () => {
      this.add(fi.files);
      fi.value = '';
    };
    const ab = h('button', 'ab');
    ab.type = 'button';
    ab.setAttribute('aria-label', t.attach);
    ab.append(icon('clip'));
    ab.onclick = () => fi.click();
    ta.onpaste = (e) => this.add(e.clipboardData && e.clipboardData.files, e);
    p.dataset.drop = t.drop;
    p.ondragover = (e) => {
      if (e.dataTransfer.types.includes('Files')) {
        e.preventDefault();
        p.classList.add('drop');
      }
    };
    p.ondragleave = (e) => p.contains(e.relatedTarget) || p.classList.remove('drop');
    p.ondrop = (e) => {
      p.classList.remove('drop');
      this.add(e.dataTransfer.files, e);
    };
    this.files = [];
    this.ups = h('div', 'ups');
    this.er = h('p', 'er');
    this.er.setAttribute('role', 'alert');
    this.oops();
    const cw = (this.cw = h('div', 'cw'));
    cw.append(this.er, this.ups, cmp);
    cmp.append(fi, ta, ab, sd);
    cmp.onsubmit = (e) => {
      e.preventDefault();
      this.submit();
    };
    ta.onkeydown = (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      }
    };
    ta.oninput = () => this.input();
    // The rating card: once an agent closed the conversation, 1 to 5 stars
    // (radio buttons, each named) and an optional comment, asked once.
    const rc = (this.rc = h('form', 'rc'));
    rc.hidden = true;
    const fs = h('fieldset');
    fs.append(h('legend', 0, t.rate));
    t.stars.forEach((n, i) => {
      const l = h('label');
      const r = h('input');
      r.type = 'radio';
      r.name = 'r';
      r.value = i + 1;
      r.onchange = () => (this.rs.disabled = false);
      l.append(r, icon('star'), h('span', 'sr', n));
      fs.append(l);
    });
    const rm = (this.rm = h('input'));
    rm.maxLength = 1000;
    rm.placeholder = t.cm;
    rm.setAttribute('aria-label', t.cm);
    const rs = (this.rs = h('button', 'rb', t.send));
    rs.disabled = true;
    this.rx_ = h('p', 'rer');
    this.rx_.setAttribute('role', 'alert');
    this.rx_.hidden = true;
    rc.append(fs, this.rx_, rm, rs);
    rc.onsubmit = (e) => {
      e.preventDefault();
      this.rate();
    };
    this.thx = h('p', 'thx', t.thx);
    this.thx.setAttribute('role', 'status');
    this.thx.tabIndex = -1;
    this.thx.hidden = true;
    // Closed: start a new conversation, or open a previous one.
    const na = (this.na = h('div', 'na'));
    na.hidden = true;
    const nb = h('button', 'rb', t.nc);
    const pb = h('button', 'lk', t.pc);
    nb.type = pb.type = 'button';
    nb.onclick = () => {
      this.nw = true;
      this.go(this.rt);
    };
    pb.onclick = () => this.list();
    na.append(nb, pb, (this.cl = h('ul', 'cv')));
    // Away, on a channel that emails: an optional address for the reply.
    const ef = (this.ef = h('form', 'ef'));
    const ei = h('input');
    ei.type = 'email';
    ei.required = true;
    ei.maxLength = 320;
    ei.placeholder = ei.ariaLabel = t.em;
    ef.append(h('span', 0, t.eh), ei, h('button', 'rb', t.ok));
    ef.onsubmit = (e) => {
      e.preventDefault();
      this.visitor = Object.assign({}, this.visitor, { email: ei.value.trim() });
      this.send_('/app/context', { visitor: this.visitor });
      store.set(this.key + ':e', 1);
      this.notes();
    };
    // Closed: the transcript by email, to the address given.
    const tp = (this.tp = h('p', 'tp'));
    const tb = h('button', 'tl', t.tr);
    tb.type = 'button';
    tb.onclick = async () => {
      if (!this.token) await this.auth();
      const r = await this.api_('/chatplugin.transcript', {}, this.token);
      tp.textContent = r.ok || r.status === 429 ? t.trd : t.fail;
    };
    tp.append(tb);
    ef.hidden = tp.hidden = true;
    // What ends a conversation is one card: the status line, the rating
    // (or its thanks), the transcript link, then what to do next.
    const end = h('div', 'end');
    end.append(this.note, rc, this.thx, tp, na);
    p.append(hd, this.bar, lw, this.ty, end, ef, cw, h('div', 'pw', t.by));

    const lc = (this.lc = h('button', 'lc'));
    lc.type = 'button';
    lc.setAttribute('aria-controls', 'p');
    lc.append(icon('chat', 'i1'), icon('x', 'i2'));
    this.bdg = h('span', 'bdg');
    this.bdg.hidden = true;
    this.bdg.setAttribute('aria-hidden', 'true');
    lc.onclick = () => this.toggle();
    this.sr = h('div', 'sr');
    this.sr.setAttribute('aria-live', 'polite');
    // Beside the launcher, not in it: its name says the count (axe: label-content-name-mismatch).
    w.append(p, lc, this.bdg, this.sr);
    // Full screen (a phone), the open panel is a modal dialog: Tab and
    // Shift+Tab cycle inside it.
    this.mq = matchMedia('(max-width: 480px)');
    this.mq.onchange = () => this.label();
    w.addEventListener('keydown', (e) => {
      if (!this.isOpen) return;
      if (e.key === 'Escape') {
        e.stopPropagation();
        this.close();
      } else if (e.key === 'Tab' && this.mq.matches) {
        const f = [...p.querySelectorAll('button,textarea,input,[href],[tabindex="0"]')].filter((x) => !x.disabled && x.getClientRects().length);
        const i = f.indexOf(root.activeElement);
        const n = f.length - 1;
        if (e.shiftKey ? i <= 0 : i < 0 || i >= n) {
          e.preventDefault();
          f[e.shiftKey ? n : 0].focus();
        }
      }
    });
    root.append(w);
    this.label();
    this.avatar(this.av, null, '');
    document.body.append(host);
    document.addEventListener('visibilitychange', () => this.markRead());
    addEventListener('online', () => this.kick());
  }

  // --- public API --------------------------------------------------------
  api() {
    return {
      channelId: this.id,
      open: () => this.open(),
      close: () => this.close(),
      toggle: () => this.toggle(),
      setVisitor: (v) => {
        this.visitor = visitorOf(v);
        this.send_('/app/context', { visitor: this.visitor });
      },
      on: (ev, fn) => {
        (this.fns[ev] = this.fns[ev] || []).push(fn);
        return () => (this.fns[ev] = this.fns[ev].filter((f) => f !== fn));
      },
    };
  }

  emit(ev, arg) {
    for (const fn of this.fns[ev] || []) {
      try {
        fn(arg);
      } catch (e) {
        setTimeout(() => { throw e; });
      }
    }
  }

  open() {
    if (this.isOpen) return;
    this.isOpen = true;
    this.w.classList.add('open');
    this.label();
    this.kick();
    this.ta.focus({ preventScroll: true });
    this.scroll(true);
    this.markRead();
    this.emit('open');
  }

  close() {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.w.classList.remove('open');
    this.label();
    this.typing(false);
    this.lc.focus({ preventScroll: true });
    this.emit('close');
  }

  toggle() {
    this.isOpen ? this.close() : this.open();
  }

  label() {
    const t = this.t;
    this.lc.setAttribute('aria-expanded', this.isOpen);
    this.p.setAttribute('aria-modal', this.isOpen && this.mq.matches);
    this.lc.setAttribute('aria-label', (this.isOpen ? t.close : t.open) + (this.unread ? ' (' + t.unread.replace('{n}', this.unread) + ')' : ''));
  }

  // --- header ------------------------------------------------------------
  color(c) {
    this.w.style.setProperty('--c', c);
    const y = luminance(c);
    this.w.style.setProperty('--ct', 1.05 / (y + 0.05) >= (y + 0.05) / 0.05 ? '#fff' : '#111');
    // Focus rings in the channel colour where it shows (3:1) on the light or
    // dark panel, else a shade of it that does (55% of it with black or
    // 45% with white: 3:1 whatever the colour).
    const mix = (k, o) => 'color-mix(in srgb,' + c + ' ' + k + ',' + o + ')';
    this.w.style.setProperty('--fl', 1.05 / (y + 0.05) >= 3 ? c : mix('55%', '#000'));
    this.w.style.setProperty('--fd', (y + 0.05) / 0.0616 >= 3 ? c : mix('45%', '#fff'));
  }

  avatar(el, url, name) {
    el.textContent = '';
    const src = url && httpUrl(url);
    if (src) {
      const img = h('img');
      img.alt = '';
      img.src = src;
      el.append(img);
    } else el.textContent = (name || '').trim().charAt(0);
  }

  channel(c) {
    if (!c) return;
    this.ch = c;
    if (c.name) this.nm.textContent = c.name;
    this.p.setAttribute('aria-label', c.name || this.t.title);
    if (/^#[0-9a-f]{6}$/i.test(c.color || '')) this.color(c.color);
    this.avatar(this.av, c.image_url, c.name);
    this.avatar(this.hello.firstChild, c.image_url, c.name);
    this.helloText.textContent = c.welcome_message || this.t.hello;
  }

  // --- connection --------------------------------------------------------
  async api_(path, body, token) {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = 'Bearer ' + token;
    const res = await fetch(this.base + path, { method: 'POST', headers, body: JSON.stringify(body), credentials: 'omit' });
    let json = null;
    try {
      json = await res.json();
    } catch (e) {
      /* not JSON */
    }
    // Refused by any door: an agent blocked this visitor.
    if (json && json.error_id === 'blocked') this.block();
    return { ok: res.ok, status: res.status, body: json };
  }

  // POST /chatplugin.authenticate, resuming when a resume token is known; a
  // refused resume token starts a new conversation instead.
  auth() {
    if (!this.authing) {
      this.authing = (async () => {
        for (;;) {
          const resume = this.rt || store.get(this.key);
          const body = { channel_id: this.id };
          if (resume) body.resume_token = resume;
          if (this.visitor) body.visitor = this.visitor;
          body.identity = this.idn;
          body.new_conversation = this.nw;
          body.context = pageCtx();
          const r = await this.api_('/chatplugin.authenticate', body);
          if (r.ok && r.body && r.body.token) return this.authenticated(r.body);
          if (r.status === 401 && resume) {
            this.forget();
            continue;
          }
          if (r.status >= 400 && r.status < 500 && r.status !== 429) this.gone = true;
          throw new Error('authenticate: ' + r.status);
        }
      })().finally(() => (this.authing = null));
    }
    return this.authing;
  }

  authenticated(b) {
    this.token = b.token;
    if (this.cid && this.cid !== b.conversation_id) this.reset();
    this.cid = b.conversation_id;
    this.rt = b.resume_token || this.rt;
    this.gone = this.nw = false;
    this.channel(b.channel);
    for (const m of b.messages || []) this.upsert(m, false);
    this.pre(b.channel);
    if (this.lastSeq || store.get(this.key)) this.keep();
    this.count();
  }

  // The pre-chat form (desk-api.md, "Support desk") in place of the
  // composer until answered; its answers go with the first message.
  pre(c) {
    const t = this.t;
    const q = (c || 0).prechat || {};
    const on = ['name', 'email', 'question'].filter((k) => /^(opt|req)/.test(q[k]));
    if (this.pf || this.lastSeq || !on.length) return;
    const f = (this.pf = h('form', 'pf'));
    f.noValidate = true;
    for (const k of on) {
      const l = h('label', 0, t.p[k]);
      const i = h(k[0] == 'q' ? 'textarea' : 'input');
      const er = h('span', 'er');
      i.name = k;
      if (k[0] != 'q') i.autocomplete = k;
      if (k[0] == 'e') i.type = k;
      i.required = q[k] === 'required';
      er.id = 'pe' + k;
      i.setAttribute('aria-describedby', er.id);
      l.append(i);
      f.append(l, er);
    }
    f.append(h('button', 'rb', t.go));
    f.onsubmit = (e) => {
      e.preventDefault();
      let bad;
      const v = {};
      for (const i of f.querySelectorAll('[name]')) {
        const x = i.value.trim();
        const s = i.required && !x ? t.req.replace('{f}', t.p[i.name]) : i.type === 'email' && x && !EM.test(x) ? t.bad : '';
        i.parentNode.nextSibling.textContent = s;
        i.ariaInvalid = !!s;
        bad = bad || (s && i);
        v[i.name] = x || undefined;
      }
      if (bad) return bad.focus();
      this.pv = v;
      f.remove();
      this.cw.hidden = false;
      this.ta.value = v.question || '';
      v.question ? this.submit() : this.ta.focus();
    };
    this.cw.hidden = true;
    this.cw.before(f);
  }

  // The conversation exists: remember how to come back to it.
  keep() {
    if (this.rt) {
      store.set(this.key, this.rt);
      store.set(this.key + ':seen', this.seen);
    }
  }

  forget() {
    store.del(this.key);
    store.del(this.key + ':seen');
    this.rt = null;
    this.seen = 0;
    this.reset();
  }

  // A new conversation: drop what belonged to the old one (unsent messages stay).
  reset() {
    for (const [k, e] of this.msgs) {
      if (e.m.seq != null) {
        e.el.remove();
        this.msgs.delete(k);
      }
    }
    this.lastSeq = this.readUpTo = this.readSent = 0;
    this.cid = null;
    this.closed = false;
    this.notes();
    this.count();
  }

  // Connects unless connected or waiting to retry.
  async start() {
    if (this.ws || this.timer || this.starting) return;
    this.starting = true;
    try {
      if (!this.token) await this.auth();
      this.connect();
    } catch (e) {
      this.retry();
    } finally {
      this.starting = false;
    }
  }

  // Connect now: from open() or when the browser is back online.
  kick() {
    if (this.timer && !this.ws) {
      clearTimeout(this.timer);
      this.timer = null;
      this.attempt = 0;
    }
    this.start();
  }

  retry() {
    if (!this.timer && !this.blk && !(this.gone && !this.isOpen)) {
      // Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... capped at 15 s.
      const d = Math.min(15000, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
      this.timer = setTimeout(() => {
        this.timer = null;
        this.start();
      }, this.gone ? 30000 : d);
    }
    this.status();
  }

  connect() {
    const ws = (this.ws = new WebSocket(this.base.replace(/^http/, 'ws') + '/ws.chatplugin?channel_id=' + encodeURIComponent(this.id), ['v12.stomp']));
    ws.binaryType = 'arraybuffer';
    let buf = '';
    const dec = new TextDecoder();
    ws.onopen = () => this.frame('CONNECT', { 'accept-version': '1.2', host: location.hostname || 'chatgate', 'heart-beat': '10000,10000', Authorization: 'Bearer ' + this.token });
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this.rx = Date.now();
      buf += typeof ev.data === 'string' ? ev.data : dec.decode(ev.data);
      let i;
      while ((i = buf.indexOf('\0')) >= 0) {
        const f = buf.slice(0, i).replace(/^[\r\n]+/, '');
        buf = buf.slice(i + 1);
        this.onFrame(parse(f));
      }
      buf = buf.replace(/^[\r\n]+/, '');
    };
    ws.onclose = () => {
      if (ws === this.ws) this.drop();
    };
  }

  // The socket is gone (closed, silent, or refused): retry with backoff.
  drop() {
    const ws = this.ws;
    this.ws = null;
    this.up = false;
    clearInterval(this.hb);
    if (ws) {
      ws.onclose = ws.onmessage = null;
      try {
        ws.close();
      } catch (e) {
        /* already closed */
      }
    }
    this.retry();
  }

  frame(cmd, hd, body) {
    let s = cmd + '\n';
    for (const k in hd) s += k + ':' + hd[k] + '\n';
    try {
      this.ws.send(s + '\n' + (body || '') + '\0');
      this.tx = Date.now();
    } catch (e) {
      /* closing; onclose retries */
    }
  }

  send_(dest, body) {
    if (this.up) this.frame('SEND', { destination: dest, 'content-type': 'application/json' }, JSON.stringify(body));
  }

  onFrame(f) {
    if (f.cmd === 'CONNECTED') {
      this.up = true;
      this.attempt = 0;
      // Heart-beats as STOMP 1.2 negotiates them: we offered 10000,10000.
      const [sx, sy] = (f.hd['heart-beat'] || '0,0').split(',').map(Number);
      const out = sy ? Math.max(10000, sy) : 0;
      const inc = sx ? Math.max(10000, sx) : 0;
      this.rx = this.tx = Date.now();
      clearInterval(this.hb);
      this.hb = setInterval(() => {
        if (out && Date.now() - this.tx > out / 2) {
          try {
            this.ws.send('\n');
            this.tx = Date.now();
          } catch (e) { /* closing */ }
        }
        if (inc && Date.now() - this.rx > inc * 2 + 1000) this.drop();
      }, 2500);
      this.frame('SUBSCRIBE', { id: 'm', destination: '/queue/message', 'since-seq': this.lastSeq });
      this.frame('SUBSCRIBE', { id: 'e', destination: '/queue/events' });
      this.status();
      this.readSent = 0;
      this.markRead();
    } else if (f.cmd === 'MESSAGE') {
      let b;
      try {
        b = JSON.parse(f.body);
      } catch (e) {
        return;
      }
      if (b.message) {
        this.upsert(b.message, true);
        if (b.type === 'message.created') this.keep();
      } else this.event(b);
    } else if (f.cmd === 'ERROR') {
      // An expired or refused visitor token: authenticate again (with the resume token).
      const e = f.hd.message || '';
      if (/401/.test(e)) {
        this.token = null;
        this.attempt = 0;
      }
      if (/403 blocked/.test(e)) this.block();
      this.drop();
    }
  }

  event(b) {
    if (b.type === 'typing') {
      clearTimeout(this.tyTimer);
      this.ty.hidden = !b.typing;
      const n = (b.sender && b.sender.name) || this.t.agent;
      this.tyText.textContent = this.t.typing.replace('{n}', n);
      if (b.typing) this.tyTimer = setTimeout(() => (this.ty.hidden = true), 10000);
      this.scroll();
    } else if (b.type === 'read') {
      this.readUpTo = Math.max(this.readUpTo, b.up_to_seq | 0);
      for (const e of this.msgs.values()) if (e.m.alignment === 'RIGHT') this.paint(e);
    } else if (b.type === 'conversation.rated') {
      this.rated(1);
    } else if (b.type === 'conversation.closed' || b.type === 'conversation.reopened') {
      this.closed = b.type === 'conversation.closed';
      if (this.closed) this.sr.textContent = this.t.closed;
    } else if (b.type === 'availability') {
      const away = (this.away = b.agents_available === false);
      this.back = b.back_at;
      this.st.textContent = away ? this.t.awayShort : this.t.online;
      this.st.classList.toggle('away', away);
    }
    this.notes();
  }

  notes() {
    const t = this.t;
    const b = this.blk;
    // Outside business hours: when the team is back, in the visitor's time.
    const s = b ? t.blk : this.closed ? t.closed : this.away ? t.away + (this.back ? t.back.replace('{t}', new Date(this.back).toLocaleString(this.lang, { dateStyle: 'full', timeStyle: 'short' })) : '') : '';
    this.note.textContent = s;
    this.note.hidden = !s;
    this.cw.hidden = b || !!(this.pf && this.pf.isConnected);
    this.na.hidden = b || !this.closed;
    // Asked while closed, unless this conversation was rated (here, in
    // another tab, or before a reload: remembered per conversation).
    const ask = !b && this.closed && this.cid && store.get(this.key + ':r') !== this.cid;
    if (this.rc.hidden === !!ask) {
      this.rc.hidden = !ask;
      this.rc.reset();
      this.rs.disabled = true;
      this.rx_.hidden = true;
    }
    if (!this.closed) this.thx.hidden = true;
    const ch = this.ch && this.ch.email_fallback;
    const mail = (this.visitor && this.visitor.email) || store.get(this.key + ':e');
    this.ef.hidden = !(!b && ch && this.away && !this.closed && !mail);
    this.tp.hidden = !(!b && ch && this.closed && mail);
  }

  // An agent blocked this visitor: say so, stop sending and reconnecting.
  block() {
    this.blk = true;
    this.notes();
    this.status();
  }

  // Shows the conversation of resume token `rt` (with `nw`: a new one of
  // the same visitor), reconnecting with its token.
  go(rt) {
    this.rt = rt;
    this.token = null;
    this.cl.textContent = '';
    this.drop();
    this.kick();
  }

  // POST /chatplugin.conversations: the visitor's others, to open.
  async list() {
    const r = await this.api_('/chatplugin.conversations', {}, this.token).catch(() => 0);
    this.cl.textContent = '';
    for (const c of (r && r.body && r.body.items) || []) {
      if (c.conversation_id === this.cid) continue;
      const m = c.last_message;
      const b = h('button', 0, (m && m.content) || c.state);
      b.type = 'button';
      b.onclick = () => this.go(c.resume_token);
      const li = h('li');
      li.append(b);
      this.cl.append(li);
    }
  }

  // The conversation is rated: thanks (`n`: told by the server, thanked where it was sent).
  rated(n) {
    store.set(this.key + ':r', this.cid);
    this.notes();
    if (!n) {
      // Focus where the card was (not the text box: a phone's keyboard would rise).
      this.thx.hidden = false;
      this.thx.focus({ preventScroll: true });
    }
  }

  // POST /chatplugin.rate; 409 already-rated means rated before (another device).
  async rate() {
    const v = this.rc.elements.r.value;
    if (!v || this.rs.disabled) return;
    this.rs.disabled = true;
    try {
      if (!this.token) await this.auth();
      const r = await this.api_('/chatplugin.rate', { rating: +v, comment: this.rm.value.trim() || undefined }, this.token);
      if (r.ok || (r.body && r.body.error_id === 'already-rated')) return this.rated();
      if (r.status === 401) this.token = null;
    } catch (e) {
      /* offline: try again */
    }
    this.rx_.textContent = this.t.fail;
    this.rx_.hidden = this.rs.disabled = false;
  }

  status() {
    this.bar.hidden = this.up || this.blk || !(this.timer || this.gone);
    this.bar.textContent = this.gone ? this.t.gone : this.t.reconnecting;
  }

  // --- messages ----------------------------------------------------------
  upsert(m, live) {
    if (!m || !m.id) return;
    const cm = m.client_message_id && 'c:' + m.client_message_id;
    let e = this.msgs.get(m.id) || (cm && this.msgs.get(cm));
    const fresh = !(e && e.m.id);
    if (!e) e = { el: h('div') };
    const moved = !e.m || e.m.seq !== m.seq;
    e.m = m;
    this.msgs.set(m.id, e);
    if (cm) this.msgs.set(cm, e);
    if (m.seq > this.lastSeq) this.lastSeq = m.seq;
    // A resumed conversation knows it is closed from its latest closed/reopened notice.
    const k = m.notice && m.notice.type;
    if (/^(closed|reopened)$/.test(k) && m.seq >= this.lastSeq) {
      this.closed = k === 'closed';
      this.notes();
    }
    if (moved) this.place(e);
    this.paint(e);
    if (fresh && (live || m.alignment === 'RIGHT')) {
      if (live && m.alignment === 'LEFT') {
        this.ty.hidden = true;
        const who = (m.sender && m.sender.name) || this.t.agent;
        this.sr.textContent = this.t.from.replace('{n}', who) + ': ' + (m.content || (m.attachments || []).map((a) => a.name).join(', '));
      }
      this.emit('message', m);
    }
    this.qrs();
    this.scroll(fresh && m.alignment === 'RIGHT', fresh && live);
    this.markRead();
    this.count();
  }

  // The quick replies of the latest message, when it is an agent's: buttons
  // under it; a click sends the title with the payload as postback.
  qrs() {
    if (this.qb) this.qb.remove();
    const r = this.log.lastElementChild;
    const e = r && r.dataset.id && this.msgs.get(r.dataset.id);
    const q = e && e.m.alignment === 'LEFT' && !e.m.deleted && e.m.quick_replies;
    this.qb = null;
    if (!q || !q.length) return;
    const d = (this.qb = h('div', 'qr'));
    for (const x of q) {
      const b = h('button', 0, x.title);
      b.type = 'button';
      b.onclick = () => {
        this.submit(x);
        this.log.focus({ preventScroll: true });
      };
      d.append(b);
    }
    this.log.append(d);
  }

  // Keeps rows in seq order; messages still being sent (no seq) stay last.
  place(e) {
    const s = e.m.seq;
    let before = null;
    if (s != null) {
      for (const r of this.log.children) {
        if (r !== e.el && 'seq' in r.dataset && (r.dataset.seq === '' || +r.dataset.seq > s)) {
          before = r;
          break;
        }
      }
    }
    this.log.insertBefore(e.el, before);
    e.el.dataset.seq = s == null ? '' : s;
  }

  paint(e) {
    const m = e.m;
    const el = e.el;
    const t = this.t;
    const side = m.alignment === 'RIGHT' ? 'r' : m.alignment === 'CENTER' ? 'c' : 'l';
    const prev = el.previousElementSibling;
    const sid = m.sender && m.sender.id;
    const same = (r) => side === 'l' && r && r.dataset.sender === sid && r.classList.contains('l');
    const grouped = same(prev);
    // A run of one agent's messages: one name on top, one time at the bottom.
    if (grouped) prev.classList.add('nt');
    let state = m._st || (m.state === 'FAILED' ? 'failed' : m.seq <= this.readUpTo ? 'read' : 'sent');
    el.className = 'm ' + side + (grouped ? ' g' : '') + (same(el.nextElementSibling) ? ' nt' : '') + (state === 'failed' ? ' fail' : '');
    el.dataset.id = m.id || '';
    el.dataset.sender = sid || '';
    el.textContent = '';
    if (side === 'c') return el.append(h('div', 'sys', noticeText(m, t)));
    const col = h('div', 'col');
    if (side === 'l') {
      const av = h('div', 'av');
      this.avatar(av, m.sender && m.sender.avatar_url, m.sender && m.sender.name);
      el.append(av);
      if (!grouped && m.sender && m.sender.name) {
        const who = h('div', 'who', m.sender.name);
        // An application's message: its name, marked as a bot.
        if (m.bot) who.append(' ', h('span', 'bot', t.bot));
        col.append(who);
      }
    }
    const b = h('div', 'b');
    const at = m.attachments || [];
    if (m.deleted || (!m.content && !at.length && m.seq)) b.append(h('span', 'del', t.deleted));
    else {
      // Images as a thumbnail sized before it loads (the whole image on a
      // click), other files as a download with their size.
      for (const a of at) {
        const x = link(a.url, this.base) || h('span');
        const th = /^image\//.test(a.content_type) && a.thumbnail_url && httpUrl(a.thumbnail_url, this.base);
        if (th) {
          const i = h('img');
          const k = Math.min(1, 240 / a.width, 240 / a.height);
          i.src = th;
          i.alt = a.name;
          if (k > 0) {
            i.width = Math.round(a.width * k);
            i.height = Math.round(a.height * k);
          }
          x.className = 'im';
          x.append(i);
        } else {
          x.className = 'fl';
          x.append(icon('file'), h('span', 'fn', a.name), h('span', 'fs', size(a.size, t, this.lang)));
        }
        col.append(x);
      }
      if (m.content) md(b, m.content);
    }
    const mt = h('div', 'mt');
    const d = new Date(m.sent_at);
    const tm = h('time', 0, isNaN(d) ? '' : d.toLocaleTimeString(this.lang, { hour: 'numeric', minute: '2-digit' }));
    if (!isNaN(d)) tm.dateTime = m.sent_at;
    mt.append(tm);
    if (side === 'r') {
      if (state === 'failed') {
        const rb = h('button', 'retry', t.retry);
        rb.type = 'button';
        rb.onclick = () => this.post(e);
        mt.append(t.fail, rb);
      } else {
        const tk = icon(state === 'read' ? 'two' : 'one', 'tk');
        tk.dataset.state = state;
        tk.setAttribute('role', 'img');
        tk.setAttribute('aria-label', t[state]);
        tk.title = t[state];
        mt.append(tk);
      }
    }
    if (b.firstChild) col.append(b);
    col.append(mt);
    el.append(col);
  }

  gap() {
    const l = this.log;
    return l.scrollHeight - l.scrollTop - l.clientHeight;
  }

  // To the bottom when asked or following; else a fresh message shows the marker.
  scroll(force, fresh) {
    if (force || this.stick) {
      this.log.scrollTop = this.log.scrollHeight;
      this.stick = true;
      this.more.hidden = true;
    } else if (fresh) this.more.hidden = false;
  }

  // The agents' messages the visitor has not seen yet.
  count() {
    let n = 0;
    for (const [k, e] of this.msgs) if (k === e.m.id && e.m.alignment === 'LEFT' && e.m.seq > this.seen) n++;
    if (n !== this.unread) {
      this.unread = n;
      this.bdg.hidden = !n;
      this.bdg.textContent = n > 9 ? '9+' : n;
      this.label();
      this.emit('unread', n);
    }
  }

  // The panel is open and the page visible: everything shown has been seen.
  markRead() {
    if (!this.isOpen || document.visibilityState === 'hidden') return;
    if (this.lastSeq > this.seen) {
      this.seen = this.lastSeq;
      if (store.get(this.key)) store.set(this.key + ':seen', this.seen);
    }
    if (this.up && this.lastSeq > this.readSent) {
      this.readSent = this.lastSeq;
      this.send_('/app/read', { up_to_seq: this.lastSeq });
    }
    this.count();
  }

  // --- composing ---------------------------------------------------------
  input() {
    const ta = this.ta;
    ta.style.height = 'auto';
    ta.style.height = Math.min(ta.scrollHeight, 120) + 'px';
    this.sd.disabled = this.files.some((u) => !u.a) || !(ta.value.trim() || this.files.length);
    if (!ta.value) return this.typing(false);
    // At most one "typing" every 3 s; "stopped" after 4 s without a key.
    if (!this.typed || Date.now() - this.typedAt > 3000) {
      this.typedAt = Date.now();
      this.typed = true;
      this.send_('/app/typing', { typing: true });
    }
    clearTimeout(this.typeTimer);
    this.typeTimer = setTimeout(() => this.typing(false), 4000);
  }

  typing(on) {
    clearTimeout(this.typeTimer);
    if (!on && this.typed) {
      this.typed = false;
      this.send_('/app/typing', { typing: false });
    }
  }

  // Sends the text typed, or the quick reply `q` (its title, and its payload as postback).
  submit(q) {
    let text = q ? q.title : this.ta.value;
    const at = q ? [] : this.files.map((u) => u.a);
    // Not while a file is still uploading.
    if (!(text.trim() || at.length) || !at.every(Boolean)) return;
    if (!text.trim()) text = '';
    if (!q) {
      this.ta.value = '';
      for (const u of this.files) u.el.remove();
      this.files = [];
      this.oops();
      this.input();
    }
    const cm = rid();
    const e = { m: { client_message_id: cm, content: text, attachments: at, postback: q && q.payload, alignment: 'RIGHT', sent_at: new Date().toISOString(), _st: 'sending' }, el: h('div') };
    this.msgs.set('c:' + cm, e);
    this.place(e);
    this.qrs();
    this.post(e);
    this.scroll(true);
  }

  // POST /chatplugin.send; a retry reuses the client_message_id, so the
  // server stores the message once however often it is sent.
  async post(e) {
    if (e.m.seq != null) return;
    e.m._st = 'sending';
    this.paint(e);
    try {
      for (let i = 0; ; i++) {
        if (!this.token) await this.auth();
        const at = e.m.attachments;
        const r = await this.api_('/chatplugin.send', { message: { text: e.m.content || undefined, attachments: at.length ? at.map((a) => a.id) : undefined, postback: e.m.postback }, client_message_id: e.m.client_message_id, prechat: this.pv }, this.token);
        if (r.ok && r.body && r.body.id) {
          this.pv = null;
          this.upsert(r.body, false);
          this.keep();
          this.start();
          return;
        }
        if (r.status !== 401 || i) throw new Error('send: ' + r.status);
        this.token = null;
      }
    } catch (err) {
      if (e.m.seq == null) {
        e.m._st = 'failed';
        this.paint(e);
      }
    }
  }

  // The files dropped, pasted or picked (`e`: the event, kept from the
  // browser's own handling when it carries files).
  add(fs, e) {
    if (!fs || !fs.length) return;
    if (e) e.preventDefault();
    this.oops();
    for (const f of fs) {
      if (this.files.length > 9) return this.oops(this.t.many);
      this.put(f);
    }
  }

  // An inline error above the text box; none when `s` is empty.
  oops(s) {
    this.er.textContent = s || '';
    this.er.hidden = !s;
  }

  unpend(u) {
    u.gone = 1;
    if (u.x) u.x.abort();
    u.el.remove();
    this.files = this.files.filter((v) => v !== u);
    this.input();
  }

  // POST /chatplugin.upload through XMLHttpRequest, for its progress events.
  async put(f) {
    const t = this.t;
    const nm = f.name || 'image.png';
    const u = { el: h('div', 'fl') };
    const pr = h('progress');
    const rm = h('button', 'rm');
    pr.max = 1;
    pr.setAttribute('aria-label', nm);
    rm.type = 'button';
    rm.setAttribute('aria-label', t.rm.replace('{f}', nm));
    rm.append(icon('x'));
    rm.onclick = () => {
      this.unpend(u);
      this.ta.focus();
    };
    u.el.append(icon('file'), h('span', 'fn', nm), pr, rm);
    this.files.push(u);
    this.ups.append(u.el);
    this.input();
    let r = {};
    try {
      for (let i = 0; i < 2; i++) {
        if (!this.token) await this.auth();
        r = await new Promise((ok) => {
          const x = (u.x = new XMLHttpRequest());
          const d = new FormData();
          d.append('file', f, nm);
          x.open('POST', this.base + '/chatplugin.upload');
          x.setRequestHeader('authorization', 'Bearer ' + this.token);
          x.responseType = 'json';
          x.upload.onprogress = (ev) => (pr.value = ev.loaded / ev.total);
          x.onloadend = () => ok(x);
          // Removed while authenticating: never sent.
          u.gone ? ok(x) : x.send(d);
        });
        if (r.status !== 401) break;
        this.token = null;
      }
    } catch (err) {
      /* authentication failed: said below */
    }
    if (u.gone) return;
    const a = r.status === 201 && r.response;
    if (a) {
      u.a = a;
      pr.replaceWith(h('span', 'fs', size(a.size, t, this.lang)));
      const th = a.thumbnail_url && httpUrl(a.thumbnail_url, this.base);
      if (th) {
        const i = h('img');
        i.alt = '';
        i.src = th;
        u.el.firstChild.replaceWith(i);
      }
      this.input();
    } else {
      // (Before unpend(): aborting a finished request zeroes its status.)
      this.oops((r.status === 413 ? t.big : r.status === 415 ? t.type : t.upx).replace('{f}', '“' + nm + '”'));
      this.unpend(u);
    }
  }
}

const api = {
  open: () => widgets[0] && widgets[0].open(),
  close: () => widgets[0] && widgets[0].close(),
  toggle: () => widgets[0] && widgets[0].toggle(),
  setVisitor: (v) => widgets[0] && widgets[0].api().setVisitor(v),
  on: (ev, fn) => (widgets[0] ? widgets[0].api().on(ev, fn) : () => {}),
  channel: (id) => {
    const w = widgets.find((x) => x.id === id);
    return w ? w.api() : null;
  },
  // Picks up every widget script tag not seen yet (several channels per page).
  _scan: () => {
    for (const s of document.querySelectorAll('script[data-channel-id]')) {
      if (/\/widget\.js([?#]|$)/.test(s.src) && !widgets.some((w) => w.script === s || w.id === s.dataset.channelId)) {
        const w = new Widget(s, widgets.length);
        w.script = s;
        widgets.push(w);
      }
    }
  },
};
window.chatgate = api;
if (document.body) api._scan();
else document.addEventListener('DOMContentLoaded', api._scan);
})();
