// chatgate console: live updates on top of server-rendered pages.
//
// Every page works without this file (forms post and redirect). With it:
// the agent event socket (/api/websocketd/, wazo-websocketd v2) tells what
// changed, and the page fetches the server-rendered HTML of what changed
// (the lists, new or changed messages), so rendering and escaping stay in
// one place (askama). Replies, typing and read marks go through the REST
// API with the agent token the page carries in <meta name="chatgate-token">.
// No inline script, no eval, no HTML built from strings: CSP-friendly.
(function () {
  'use strict';

  document.documentElement.classList.add('js');
  // What only works with this script (Enter sends, the shortcuts) is
  // hidden in the page and shown here, so a page without script never
  // promises it.
  document.querySelectorAll('[data-js-only]').forEach((el) => { el.hidden = false; });

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const meta = (name) => {
    const el = $(`meta[name="${name}"]`);
    return el ? el.content : null;
  };

  const token = meta('chatgate-token');
  const me = meta('chatgate-me');
  const baseTitle = document.title;

  // ---------------------------------------------------------------- helpers

  let toastTimer = null;
  function toast(text) {
    const el = $('#toast');
    if (!el) return;
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
  }

  function parseHtml(html) {
    const template = document.createElement('template');
    template.innerHTML = html; // server-rendered, escaped by askama; scripts in a template never run
    return template.content;
  }

  function api(method, path, body) {
    return fetch('/api/chatd/1.0' + path, {
      method,
      headers: { 'X-Auth-Token': token, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  // Days and times in the agent's time zone (the server writes UTC), with
  // as much date as they need, as the server labels them: "14:02",
  // "Yesterday 14:02", "3 Dec 14:02", "3 Dec 2025 14:02".
  function daysAgo(d) {
    const day = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate());
    return Math.round((day(new Date()) - day(d)) / 86400000);
  }
  function whenLabel(d) {
    const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const ago = daysAgo(d);
    if (ago === 0) return hm;
    if (ago === 1) return 'Yesterday ' + hm;
    const sameYear = d.getFullYear() === new Date().getFullYear();
    const date = d.toLocaleDateString([], sameYear ? { month: 'short', day: 'numeric' } : { year: 'numeric', month: 'short', day: 'numeric' });
    return date + ' ' + hm;
  }
  function dayLabel(d) {
    const ago = daysAgo(d);
    if (ago === 0) return 'Today';
    if (ago === 1) return 'Yesterday';
    const options = { weekday: 'long', month: 'long', day: 'numeric' };
    if (d.getFullYear() !== new Date().getFullYear()) options.year = 'numeric';
    return d.toLocaleDateString([], options);
  }
  function localTimes(root) {
    $$('time[datetime]', root).forEach((el) => {
      if (el.closest('.day-sep')) return; // see arrange()
      const d = new Date(el.getAttribute('datetime'));
      if (isNaN(d)) return;
      el.textContent = whenLabel(d);
      el.title = d.toLocaleString();
    });
  }

  // Day separators and sender groups of a conversation, by local day: the
  // server's rule (views::arrange) redone in the agent's time zone, for
  // the messages of the page and those added live.
  const GROUP_MS = 5 * 60 * 1000;
  function dayKey(d) {
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  }
  function arrange(container) {
    if (!container) return;
    $$('.day-sep', container).forEach((el) => el.remove());
    let previous = null;
    $$('article.msg', container).forEach((article) => {
      const at = new Date(parseInt(article.dataset.at, 10));
      if (isNaN(at)) return;
      const key = dayKey(at);
      const sameDay = previous && previous.key === key;
      if (!sameDay) {
        const sep = document.createElement('p');
        sep.className = 'day-sep';
        sep.dataset.day = key;
        const time = document.createElement('time');
        time.setAttribute('datetime', key);
        time.textContent = dayLabel(at);
        sep.appendChild(time);
        container.insertBefore(sep, article);
      }
      const system = article.classList.contains('system');
      const grouped = !!(sameDay && !system && !previous.system &&
        previous.sender === article.dataset.sender && at - previous.at < GROUP_MS);
      article.classList.toggle('grouped', grouped);
      previous = { key, at, system, sender: article.dataset.sender };
    });
  }

  function waitLabel(seconds) {
    if (seconds < 60) return 'just now';
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
    return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  }

  function waits() {
    $$('.wait[data-since]').forEach((el) => {
      const since = new Date(el.dataset.since);
      if (!isNaN(since)) el.textContent = waitLabel(Math.max(0, (Date.now() - since) / 1000));
    });
  }

  // ------------------------------------------------------ plain page bits

  // The presence switch, role selects and filters apply on change (one
  // listener: the lists' refresh replaces the inbox's filter selects).
  document.addEventListener('change', (event) => {
    const select = event.target;
    if (select.matches && select.matches('[data-presence-select], [data-autosubmit]')) select.form.requestSubmit();
  });
  $$('[data-copy]').forEach((button) => {
    button.addEventListener('click', () => {
      const source = document.getElementById(button.dataset.copy);
      navigator.clipboard.writeText(source.textContent.trim()).then(
        () => toast('Copied to the clipboard'),
        () => toast('Could not copy: select the text and copy it'),
      );
    });
  });
  $$('[data-confirm]').forEach((button) => {
    button.addEventListener('click', (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  });
  localTimes(document);
  arrange($('#messages'));
  waits();
  setInterval(waits, 15000);

  if (!token) return; // the login page

  // ------------------------------------------------- sound and title badge

  const MUTE_KEY = 'chatgate:console:muted';
  let muted = localStorage.getItem(MUTE_KEY) === '1';
  const muteButton = $('[data-mute]');
  function showMute() {
    if (!muteButton) return;
    muteButton.setAttribute('aria-pressed', String(muted));
    muteButton.title = muted ? 'Sound off (click to unmute)' : 'Sound on (click to mute)';
  }
  showMute();
  if (muteButton) {
    muteButton.addEventListener('click', () => {
      muted = !muted;
      localStorage.setItem(MUTE_KEY, muted ? '1' : '0');
      showMute();
      if (!muted) beep();
    });
  }

  let audio = null;
  function beep() {
    if (muted) return;
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const now = audio.currentTime;
      [880, 1320].forEach((freq, i) => {
        const osc = audio.createOscillator();
        const gain = audio.createGain();
        osc.type = 'sine';
        osc.frequency.value = freq;
        const start = now + i * 0.12;
        gain.gain.setValueAtTime(0.0001, start);
        gain.gain.exponentialRampToValueAtTime(0.15, start + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.18);
        osc.connect(gain).connect(audio.destination);
        osc.start(start);
        osc.stop(start + 0.2);
      });
    } catch (_) {
      // No audio (autoplay policy before any click): the badge still shows.
    }
  }

  // Unseen: queued visitors plus unread messages of the open conversations
  // (mine and the team's; a closed one waits for nobody), and, while the
  // tab is hidden, what arrived since.
  let unseen = 0;
  function badge() {
    const queued = $$('[data-list=queue] li[data-room]').length;
    let unread = 0;
    $$('[data-list=mine] .unread-count, [data-list=team] .unread-count').forEach((el) => {
      unread += parseInt(el.textContent, 10) || 0;
    });
    const n = queued + unread + (document.hidden ? unseen : 0);
    document.title = n > 0 ? `(${n}) ${baseTitle}` : baseTitle;
  }
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) {
      unseen = 0;
      markRead();
    }
    badge();
  });
  function notify() {
    if (document.hidden) unseen += 1;
    beep();
    badge();
  }

  // ------------------------------------------------- desktop notifications

  // Opt-in: a button beside the sound's asks the browser's permission when
  // clicked (never on load); the choice is remembered. A notification is
  // shown only while this tab is hidden, for a visitor joining the queue
  // and for a message in one of the agent's conversations.
  const NOTIFY_KEY = 'chatgate:console:notify';
  const notifySupported = 'Notification' in window;
  let notifyOn = notifySupported && localStorage.getItem(NOTIFY_KEY) === '1';
  let notifyButton = null;
  function showNotifyChoice() {
    if (!notifyButton) return;
    const blocked = notifySupported && Notification.permission === 'denied';
    const on = notifyOn && Notification.permission === 'granted';
    notifyButton.setAttribute('aria-pressed', String(on));
    notifyButton.title = blocked
      ? 'Desktop notifications are blocked in this browser\'s site settings'
      : on ? 'Desktop notifications on (click to turn off)' : 'Desktop notifications off (click to turn on)';
  }
  if (notifySupported && muteButton) {
    notifyButton = document.createElement('button');
    notifyButton.type = 'button';
    notifyButton.className = 'icon-btn notify-btn';
    notifyButton.dataset.notify = '';
    // A bell, drawn (an emoji depends on the system's fonts).
    const SVG = 'http://www.w3.org/2000/svg';
    const icon = document.createElementNS(SVG, 'svg');
    icon.setAttribute('viewBox', '0 0 24 24');
    icon.setAttribute('width', '16');
    icon.setAttribute('height', '16');
    icon.setAttribute('aria-hidden', 'true');
    icon.setAttribute('class', 'bell');
    [
      'M6 16V11a6 6 0 0 1 12 0v5l1.5 2h-15z',
      'M10 20.5a2 2 0 0 0 4 0',
    ].forEach((d) => {
      const path = document.createElementNS(SVG, 'path');
      path.setAttribute('d', d);
      icon.appendChild(path);
    });
    const slash = document.createElementNS(SVG, 'path');
    slash.setAttribute('d', 'M4 4l16 16');
    slash.setAttribute('class', 'bell-off');
    icon.appendChild(slash);
    const label = document.createElement('span');
    label.className = 'visually-hidden';
    label.textContent = 'Desktop notifications';
    notifyButton.append(icon, label);
    muteButton.after(notifyButton);
    showNotifyChoice();
    notifyButton.addEventListener('click', async () => {
      if (notifyOn && Notification.permission === 'granted') {
        notifyOn = false;
      } else {
        let permission = Notification.permission;
        if (permission === 'default') {
          try { permission = await Notification.requestPermission(); } catch (_) { permission = 'denied'; }
        }
        notifyOn = permission === 'granted';
        if (!notifyOn) toast('The browser blocks notifications for this site: allow them in its site settings.');
      }
      localStorage.setItem(NOTIFY_KEY, notifyOn ? '1' : '0');
      showNotifyChoice();
      if (notifyOn) toast('Desktop notifications on while this tab is in the background.');
    });
  }
  function desktopNotify(title, body, roomId) {
    if (!notifyOn || !document.hidden || Notification.permission !== 'granted') return;
    try {
      const n = new Notification(title, {
        body: (body || '').slice(0, 140),
        tag: roomId ? 'chatgate-' + roomId : undefined,
      });
      n.addEventListener('click', () => {
        window.focus();
        if (roomId && roomId !== currentRoom) location.href = `/console/rooms/${roomId}#latest`;
        n.close();
      });
    } catch (_) {
      // Some browsers only notify from a service worker: the sound and badge remain.
    }
  }

  // ------------------------------------------------------------- the lists

  const lists = $('#lists');
  const messages = $('#messages');
  const currentRoom = messages ? messages.dataset.room : '';
  // A queued room read before answering, or a supervisor's: nothing is
  // marked read, no typing is sent (there is no reply box).
  const readOnly = !!(messages && messages.dataset.readonly === 'true');
  const roomUrl = messages ? messages.dataset.url || `/console/rooms/${currentRoom}` : '';
  let listsTimer = null;
  // The element of the (refreshed) lists that stands for `el`: the same
  // room's link, or its Answer button.
  function sameInLists(el) {
    if (!lists || lists.contains(el) && el.isConnected) return el;
    const holder = el.closest('[data-room]');
    if (!holder) return null;
    const row = $(`[data-room="${CSS.escape(holder.dataset.room)}"]`, lists);
    if (!row) return null;
    if (el.matches('a.row')) return row.matches('a') ? row : $('a', row);
    if (el.matches('button[data-answer]')) return $('button[data-answer]', row);
    return row.matches('a, button') ? row : $('a, button', row);
  }
  function refreshLists() {
    if (!lists) return;
    clearTimeout(listsTimer);
    listsTimer = setTimeout(async () => {
      const params = new URLSearchParams(location.search);
      const query = new URLSearchParams({ current: currentRoom });
      if (params.get('closed_page')) query.set('closed_page', params.get('closed_page'));
      // The inbox's filters and search stay as the page has them.
      for (const key of ['label', 'channel', 'assignee', 'state', 'q']) {
        if (params.get(key)) query.set(key, params.get(key));
      }
      const response = await fetch('/console/fragments/lists?' + query, { credentials: 'same-origin' });
      if (response.redirected || !response.ok) return;
      const scroll = lists.scrollTop;
      const focus = lists.contains(document.activeElement) ? document.activeElement : null;
      lists.replaceChildren(parseHtml(await response.text()));
      lists.scrollTop = scroll;
      // Keyboard focus on a row stays on that row's new copy.
      const again = focus && sameInLists(focus);
      if (again) again.focus({ preventScroll: true });
      localTimes(lists);
      waits();
      badge();
    }, 200);
  }

  // ------------------------------------------------------ the conversation

  function lastSeq() {
    return parseInt(messages.dataset.lastSeq, 10) || 0;
  }

  function nearBottom() {
    return messages.scrollHeight - messages.scrollTop - messages.clientHeight < 120;
  }

  function scrollToBottom() {
    messages.scrollTop = messages.scrollHeight;
  }

  async function fetchMessages(query) {
    const response = await fetch(`${roomUrl}/messages?${query}`, { credentials: 'same-origin' });
    if (!response.ok || response.redirected) return null;
    const fragment = parseHtml(await response.text());
    localTimes(fragment);
    return fragment;
  }

  // Appends what is new since the last message shown (or replaces a
  // message shown already), then marks it read when the agent can see it.
  let fetching = Promise.resolve();
  function catchUp(fromSeq) {
    fetching = fetching.then(async () => {
      if (!messages) return;
      const since = fromSeq === undefined ? lastSeq() : Math.min(fromSeq, lastSeq());
      const fragment = await fetchMessages('after_seq=' + since);
      if (!fragment) return;
      const stick = nearBottom();
      const empty = $('.empty', messages);
      $$('article.msg', fragment).forEach((article) => {
        const existing = document.getElementById(article.id);
        if (existing) {
          if (existing.querySelector('details[open]')) return; // the agent is using its menu
          existing.replaceWith(article);
        } else {
          if (empty) empty.remove();
          messages.insertBefore(article, $('[data-latest]', messages));
        }
        const seq = parseInt(article.dataset.seq, 10);
        if (seq > lastSeq()) messages.dataset.lastSeq = String(seq);
      });
      arrange(messages);
      applyRead();
      if (stick) scrollToBottom();
      markRead();
    }).catch(() => {});
    return fetching;
  }

  let readTimer = null;
  function markRead() {
    if (!messages || readOnly || document.hidden) return;
    clearTimeout(readTimer);
    readTimer = setTimeout(() => { api('PUT', `/users/me/rooms/${currentRoom}/read`, {}); }, 300);
  }

  // How far the other side has read (chatd_user_room_read). Kept, because
  // the mark may come before a reply's row is fetched, or before a late
  // "delivered" that must not take the read tick back.
  let readUpTo = 0;
  function applyRead() {
    if (!messages || !readUpTo) return;
    $$('article.msg.mine', messages).forEach((article) => {
      if (parseInt(article.dataset.seq, 10) <= readUpTo) setTick(article, 'read');
    });
  }

  function setTick(article, tick) {
    const el = $('[data-tick]', article);
    if (!el) return;
    if (tick === 'delivered' && parseInt(article.dataset.seq, 10) <= readUpTo) tick = 'read';
    el.className = 'tick ' + tick;
    const label = { sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not delivered' }[tick];
    el.title = label;
    el.firstElementChild && (el.firstElementChild.textContent = label);
  }

  if (messages) {
    if (!new URLSearchParams(location.search).get('before_seq')) scrollToBottom();

    // Infinite scroll upward: the "older" link loads in place.
    let loadingOlder = false;
    async function loadOlder() {
      const link = $('a.older', messages);
      if (!link || loadingOlder) return;
      loadingOlder = true;
      const fragment = await fetchMessages('before_seq=' + link.dataset.older);
      loadingOlder = false;
      if (!fragment) return;
      const before = messages.scrollHeight;
      link.remove();
      messages.insertBefore(fragment, messages.firstChild);
      arrange(messages);
      messages.scrollTop += messages.scrollHeight - before;
    }
    messages.addEventListener('click', (event) => {
      if (event.target.closest('a.older')) {
        event.preventDefault();
        loadOlder();
      }
    });
    messages.addEventListener('scroll', () => {
      if (messages.scrollTop < 80) loadOlder();
    });
  }

  // The reply box: Enter sends, Shift+Enter is a new line; we tell the
  // visitor we are typing (at most every 3 s) and when we stop.
  const composer = $('#composer');
  const reply = $('[data-reply]');
  let typing = false;
  let typingSent = 0;
  let typingStop = null;
  function setTyping(on) {
    if (!currentRoom) return;
    if (on && typing && Date.now() - typingSent < 3000) return;
    if (!on && !typing) return;
    typing = on;
    typingSent = Date.now();
    api('POST', `/users/me/rooms/${currentRoom}/activities`, { type: on ? 'start_typing' : 'stop_typing' }).catch(() => {});
  }
  // Mentions (agent rooms): "@" and the start of a name in the reply box
  // offers the room's other members; the ones picked whose "@Name" is still
  // in the text go with the reply as `mentions`.
  const people = $$('[data-member]')
    .map((li) => ({ id: li.dataset.member, name: li.dataset.memberName || '' }))
    .filter((p) => p.id !== me && p.name);
  const picked = new Map();
  function mentionsIn(content) {
    const ids = [];
    picked.forEach((id, name) => {
      if (content.includes('@' + name) && !ids.includes(id)) ids.push(id);
    });
    return ids;
  }
  if (composer && reply && people.length) {
    const box = $('.composer-box', composer) || composer;
    const list = document.createElement('ul');
    list.className = 'mention-list';
    list.id = 'mention-list';
    list.setAttribute('role', 'listbox');
    list.setAttribute('aria-label', 'Mention a member');
    list.hidden = true;
    box.appendChild(list);
    reply.setAttribute('aria-autocomplete', 'list');
    reply.setAttribute('aria-controls', 'mention-list');
    let matches = [];
    let active = 0;
    const typed = () => {
      const before = reply.value.slice(0, reply.selectionStart);
      const found = /(^|\s)@([^\s@]*)$/.exec(before);
      return found ? found[2] : null;
    };
    const close = () => {
      list.hidden = true;
      matches = [];
      reply.removeAttribute('aria-activedescendant');
      reply.setAttribute('aria-expanded', 'false');
    };
    const show = () => {
      list.replaceChildren(...matches.map((p, i) => {
        const li = document.createElement('li');
        li.id = 'mention-' + i;
        li.setAttribute('role', 'option');
        li.setAttribute('aria-selected', String(i === active));
        li.textContent = p.name;
        li.addEventListener('mousedown', (event) => { event.preventDefault(); pick(p); });
        return li;
      }));
      list.hidden = false;
      reply.setAttribute('aria-controls', 'mention-list');
      reply.setAttribute('aria-expanded', 'true');
      reply.setAttribute('aria-activedescendant', 'mention-' + active);
    };
    function pick(p) {
      const at = reply.selectionStart;
      const before = reply.value.slice(0, at).replace(/@([^\s@]*)$/, '@' + p.name + ' ');
      reply.value = before + reply.value.slice(at);
      reply.setSelectionRange(before.length, before.length);
      picked.set(p.name, p.id);
      close();
      reply.focus();
    }
    reply.addEventListener('input', () => {
      const q = typed();
      if (q === null) { close(); return; }
      const lower = q.toLowerCase();
      matches = people.filter((p) => p.name.toLowerCase().startsWith(lower)).slice(0, 8);
      active = 0;
      if (matches.length) show(); else close();
    });
    reply.addEventListener('blur', () => setTimeout(close, 150));
    // Registered before the reply box's own keys: while the list is open,
    // Enter and Tab pick, the arrows move, Escape closes it.
    reply.addEventListener('keydown', (event) => {
      if (list.hidden || !matches.length) return;
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        active = (active + (event.key === 'ArrowDown' ? 1 : matches.length - 1)) % matches.length;
        show();
      } else if (event.key === 'Enter' || event.key === 'Tab') {
        pick(matches[active]);
      } else if (event.key === 'Escape') {
        close();
      } else {
        return;
      }
      event.preventDefault();
      event.stopImmediatePropagation();
    });
  }

  // Canned responses: "/" at the start of a word in the reply box searches
  // the tenant's canned responses (shortcut and title) as the agent types;
  // the arrows move, Enter or Tab inserts, Escape closes (an ARIA listbox,
  // as for mentions). The inserted text has its fields filled here, from
  // what the page says of this conversation: {{visitor.name}} (empty when
  // the visitor gave none), {{agent.name}}, {{channel.name}}; any other
  // {{field}} stays as written, for the agent to see and edit.
  if (composer && reply) {
    const box = $('.composer-box', composer) || composer;
    const fields = {
      'visitor.name': composer.dataset.fillVisitor || '',
      'agent.name': composer.dataset.fillAgent || '',
      'channel.name': composer.dataset.fillChannel || '',
    };
    const filled = (text) => text.replace(/\{\{\s*([A-Za-z_.]+)\s*\}\}/g, (all, name) => {
      const key = name.toLowerCase();
      return Object.prototype.hasOwnProperty.call(fields, key) ? fields[key] : all;
    });
    const list = document.createElement('ul');
    list.className = 'mention-list canned-list';
    list.id = 'canned-list';
    list.setAttribute('role', 'listbox');
    list.setAttribute('aria-label', 'Canned responses');
    list.hidden = true;
    box.appendChild(list);
    // A textarea may not say it is expanded (it is no combobox): a polite
    // status tells screen readers the list opened, and how many it holds.
    const told = document.createElement('span');
    told.className = 'visually-hidden';
    told.setAttribute('role', 'status');
    box.appendChild(told);
    reply.setAttribute('aria-autocomplete', 'list');
    let matches = [];
    let active = 0;
    let asked = 0;
    let timer = null;
    // Escape closes the picker for this "/word" until another one begins.
    let dismissed = -1;
    const typed = () => {
      const before = reply.value.slice(0, reply.selectionStart);
      const found = /(^|\s)\/([^\s/]*)$/.exec(before);
      return found ? { q: found[2], at: before.length - found[2].length - 1 } : null;
    };
    const close = () => {
      list.hidden = true;
      matches = [];
      reply.removeAttribute('aria-activedescendant');
      told.textContent = '';
    };
    const show = () => {
      list.replaceChildren(...matches.map((c, i) => {
        const li = document.createElement('li');
        li.id = 'canned-' + i;
        li.setAttribute('role', 'option');
        li.setAttribute('aria-selected', String(i === active));
        const head = document.createElement('span');
        head.className = 'canned-head';
        const cut = document.createElement('strong');
        cut.textContent = '/' + c.shortcut;
        head.append(cut, ' ', c.title);
        const text = document.createElement('span');
        text.className = 'canned-text';
        text.textContent = filled(c.content).replace(/\s+/g, ' ');
        li.append(head, text);
        li.addEventListener('mousedown', (event) => { event.preventDefault(); pick(c); });
        return li;
      }));
      list.hidden = false;
      reply.setAttribute('aria-controls', 'canned-list');
      reply.setAttribute('aria-activedescendant', 'canned-' + active);
      const current = $('#canned-' + active, list);
      if (current) current.scrollIntoView({ block: 'nearest' });
    };
    function pick(c) {
      const at = reply.selectionStart;
      const found = typed();
      if (!found) { close(); return; }
      const text = filled(c.content);
      const before = reply.value.slice(0, found.at) + text;
      reply.value = before + reply.value.slice(at);
      reply.setSelectionRange(before.length, before.length);
      close();
      reply.focus();
      reply.dispatchEvent(new Event('input', { bubbles: true }));
    }
    async function search(found) {
      const ticket = ++asked;
      let items = [];
      try {
        const response = await api('GET', '/canned_responses?limit=8&search=' + encodeURIComponent(found.q));
        if (!response.ok) return;
        items = (await response.json()).items || [];
      } catch (_) {
        return;
      }
      // A newer keystroke asked again, or the "/word" is gone.
      const now = typed();
      if (ticket !== asked || !now || now.at !== found.at || document.activeElement !== reply) return;
      matches = items;
      active = 0;
      if (matches.length) {
        show();
        told.textContent = `${matches.length} canned ${matches.length === 1 ? 'response' : 'responses'}: arrows to choose, Enter to insert`;
      } else {
        close();
      }
    }
    reply.addEventListener('input', () => {
      clearTimeout(timer);
      const found = typed();
      if (!found || found.at === dismissed) {
        if (!found) dismissed = -1;
        asked++;
        close();
        return;
      }
      timer = setTimeout(() => search(found), 120);
    });
    reply.addEventListener('blur', () => setTimeout(close, 150));
    // Registered before the reply box's own keys: while the list is open,
    // Enter and Tab insert, the arrows move, Escape closes it.
    reply.addEventListener('keydown', (event) => {
      if (list.hidden || !matches.length) return;
      if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
        active = (active + (event.key === 'ArrowDown' ? 1 : matches.length - 1)) % matches.length;
        show();
      } else if (event.key === 'Enter' || event.key === 'Tab') {
        if (event.isComposing) return;
        pick(matches[active]);
      } else if (event.key === 'Escape') {
        const found = typed();
        dismissed = found ? found.at : -1;
        asked++;
        close();
      } else {
        return;
      }
      event.preventDefault();
      event.stopImmediatePropagation();
    });
  }

  // Files: the paperclip, a drop on the conversation and a pasted
  // screenshot each upload at once (XMLHttpRequest: its upload reports
  // progress) to the room's attachments; the uploads wait as chips above
  // the reply box (removable) and go with the next reply as `attachments`.
  // Each finished upload also gets a hidden `attachments` field, so the
  // form still says it when posted without this script's help.
  const MAX_FILES = 10;
  const files = (function attachments() {
    const list = composer && $('[data-pending]', composer);
    if (!list || !currentRoom) return null;
    const input = $('[data-file-input]', composer);
    const button = $('[data-attach]', composer);
    const zone = $('[data-dropzone]');
    const hint = $('[data-drop-hint]');
    const items = [];

    function sizeLabel(bytes) {
      if (bytes < 1024) return `${bytes} bytes`;
      if (bytes < 1048576) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
      const mb = bytes / 1048576;
      return mb < 10 ? `${mb.toFixed(1)} MB` : `${Math.round(mb)} MB`;
    }
    function changed() {
      list.hidden = items.length === 0;
      // A reply may be files alone.
      if (reply) reply.required = items.length === 0;
      composer.classList.toggle('uploading', items.some((i) => i.state === 'uploading'));
    }
    function remove(item) {
      if (item.xhr && item.state === 'uploading') item.xhr.abort();
      const at = items.indexOf(item);
      if (at !== -1) items.splice(at, 1);
      item.li.remove();
      if (item.field) item.field.remove();
      changed();
    }
    function fail(item, message) {
      item.state = 'failed';
      item.li.classList.add('failed');
      item.li.classList.remove('uploading');
      item.status.textContent = message;
      item.bar.hidden = true;
    }
    // A pasted screenshot is called "image.png" by browsers: name it after
    // when it was taken.
    function named(file) {
      if (file.name && file.name !== 'image.png') return file;
      const d = new Date();
      const pad = (n) => String(n).padStart(2, '0');
      const ext = (file.type.split('/')[1] || 'png').replace(/[^a-z0-9]/g, '');
      const name = `Screenshot ${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}.${pad(d.getMinutes())}.${pad(d.getSeconds())}.${ext}`;
      try { return new File([file], name, { type: file.type }); } catch (_) { return file; }
    }
    function chip(file) {
      const li = document.createElement('li');
      li.className = 'file-chip uploading';
      const icon = document.createElement('span');
      icon.className = 'chip-icon';
      icon.setAttribute('aria-hidden', 'true');
      const text = document.createElement('span');
      text.className = 'chip-text';
      const name = document.createElement('span');
      name.className = 'chip-name';
      name.textContent = file.name;
      name.title = file.name;
      const status = document.createElement('span');
      status.className = 'chip-status';
      status.textContent = `Uploading… ${sizeLabel(file.size)}`;
      const bar = document.createElement('progress');
      bar.max = 1;
      bar.value = 0;
      bar.setAttribute('aria-label', `Uploading ${file.name}`);
      text.append(name, status, bar);
      const x = document.createElement('button');
      x.type = 'button';
      x.className = 'chip-remove';
      x.textContent = '×';
      x.title = 'Remove';
      x.setAttribute('aria-label', `Remove ${file.name}`);
      li.append(icon, text, x);
      return { li, icon, status, bar, x };
    }
    function upload(item) {
      return new Promise((resolve) => {
        const xhr = new XMLHttpRequest();
        item.xhr = xhr;
        xhr.open('POST', `/api/chatd/1.0/users/me/rooms/${encodeURIComponent(currentRoom)}/attachments`);
        xhr.setRequestHeader('X-Auth-Token', token);
        xhr.responseType = 'json';
        xhr.upload.addEventListener('progress', (event) => {
          if (!event.lengthComputable) return;
          item.bar.value = event.loaded / event.total;
          item.status.textContent = `Uploading… ${Math.floor((100 * event.loaded) / event.total)}%`;
        });
        xhr.addEventListener('load', () => {
          const body = xhr.response || {};
          if (xhr.status === 201 && body.id) {
            item.state = 'done';
            item.id = body.id;
            item.li.classList.remove('uploading');
            item.li.dataset.attachment = body.id;
            item.bar.hidden = true;
            item.status.textContent = sizeLabel(body.size || item.file.size);
            if (body.thumbnail_url) {
              const img = document.createElement('img');
              img.src = body.thumbnail_url;
              img.alt = '';
              item.icon.replaceChildren(img);
              item.icon.classList.add('thumb');
            }
            item.field = document.createElement('input');
            item.field.type = 'hidden';
            item.field.name = 'attachments';
            item.field.value = body.id;
            composer.appendChild(item.field);
          } else {
            fail(item, body.message || `Not uploaded (${xhr.status})`);
          }
          resolve();
        });
        xhr.addEventListener('error', () => { fail(item, 'Not uploaded: no connection'); resolve(); });
        xhr.addEventListener('abort', () => { item.state = 'aborted'; resolve(); });
        const form = new FormData();
        form.append('file', item.file, item.file.name);
        xhr.send(form);
      }).finally(changed);
    }
    function add(fileList) {
      const chosen = Array.from(fileList || []);
      if (!chosen.length) return;
      // The chips take room from the conversation: its newest message stays in view.
      const stick = messages && nearBottom();
      const room = MAX_FILES - items.length;
      if (chosen.length > room) toast(`At most ${MAX_FILES} files a message.`);
      const maxBytes = parseInt(composer.dataset.maxBytes, 10) || Infinity;
      chosen.slice(0, Math.max(0, room)).forEach((raw) => {
        const file = named(raw);
        if (file.size > maxBytes) {
          toast(`${file.name} is too large: files may be up to ${sizeLabel(maxBytes)}.`);
          return;
        }
        const parts = chip(file);
        const item = { file, state: 'uploading', id: null, field: null, ...parts };
        if (/^image\//.test(file.type)) item.icon.classList.add('image');
        item.icon.textContent = /^image\//.test(file.type) ? '' : (file.name.split('.').pop() || 'file').slice(0, 4).toUpperCase();
        item.x.addEventListener('click', () => { remove(item); if (reply) reply.focus(); });
        items.push(item);
        list.appendChild(item.li);
        item.done = upload(item);
      });
      changed();
      if (stick) scrollToBottom();
    }

    if (button && input) {
      button.addEventListener('click', () => input.click());
      input.addEventListener('change', () => {
        add(input.files);
        input.value = '';
      });
    }
    if (reply) {
      reply.addEventListener('paste', (event) => {
        const data = event.clipboardData;
        const pasted = data ? Array.from(data.files || []) : [];
        if (!pasted.length) return;
        // Text and a picture of it (copied from an office program): the
        // text is pasted, as the agent expects.
        if (data.getData('text/plain')) return;
        event.preventDefault();
        add(pasted);
      });
    }
    const carriesFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes('Files');
    // A file dropped beside the conversation would make the browser open
    // it in place of the console.
    document.addEventListener('dragover', (event) => {
      if (!carriesFiles(event) || (zone && zone.contains(event.target))) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = 'none';
    });
    document.addEventListener('drop', (event) => {
      if (carriesFiles(event) && !(zone && zone.contains(event.target))) event.preventDefault();
    });
    if (zone && hint) {
      let depth = 0;
      zone.addEventListener('dragenter', (event) => {
        if (!carriesFiles(event)) return;
        event.preventDefault();
        depth += 1;
        hint.hidden = false;
      });
      zone.addEventListener('dragover', (event) => {
        if (!carriesFiles(event)) return;
        event.preventDefault();
        event.dataTransfer.dropEffect = 'copy';
      });
      zone.addEventListener('dragleave', () => {
        depth = Math.max(0, depth - 1);
        if (depth === 0) hint.hidden = true;
      });
      zone.addEventListener('drop', (event) => {
        if (!carriesFiles(event)) return;
        event.preventDefault();
        depth = 0;
        hint.hidden = true;
        add(event.dataTransfer.files);
      });
    }

    return {
      count: () => items.length,
      // Waits for the uploads under way; the ids of those that made it.
      ready: async () => {
        await Promise.all(items.map((i) => i.done));
        return items.filter((i) => i.state === 'done').map((i) => i.id);
      },
      failed: () => items.some((i) => i.state === 'failed'),
      clear: () => { items.slice().forEach(remove); },
    };
  })();

  // A private note (visitor rooms): agents only. While it is ticked the
  // box looks like a note, files cannot be added, and the visitor is not
  // told that anyone is typing.
  const privateBox = composer && $('[data-private]', composer);
  const noteMode = () => Boolean(privateBox && privateBox.checked);
  if (privateBox) {
    const attach = $('[data-attach]', composer);
    privateBox.addEventListener('change', () => {
      const on = noteMode();
      composer.classList.toggle('note-mode', on);
      reply.placeholder = on ? 'Write a private note (agents only)…' : 'Write a reply…';
      if (attach) attach.disabled = on;
      if (on) { clearTimeout(typingStop); setTyping(false); }
      reply.focus();
    });
  }

  if (composer && reply) {
    reply.addEventListener('input', () => {
      clearTimeout(typingStop);
      if (noteMode()) return;
      if (reply.value.trim()) {
        setTyping(true);
        typingStop = setTimeout(() => setTyping(false), 4000);
      } else {
        setTyping(false);
      }
    });
    reply.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        composer.requestSubmit();
      } else if (event.key === 'Escape') {
        if (messages) messages.focus(); else reply.blur();
      }
    });
    composer.addEventListener('submit', async (event) => {
      event.preventDefault();
      const content = reply.value;
      if (!content.trim() && !(files && files.count())) return;
      reply.disabled = true;
      composer.classList.add('sending');
      try {
        const ids = files ? await files.ready() : [];
        if (files && files.failed()) {
          toast('A file was not uploaded: remove it (×) or try again.');
          return;
        }
        if (!content.trim() && !ids.length) return;
        const note = noteMode();
        if (note && ids.length) {
          toast('A private note is text only: remove the files (×) or untick Private note.');
          return;
        }
        const body = note ? { content, private: true } : { mentions: mentionsIn(content) };
        if (!note && content.trim()) body.content = content;
        if (ids.length) body.attachments = ids;
        const response = await api('POST', `/users/me/rooms/${currentRoom}/messages`, body);
        if (!response.ok) {
          const body = await response.json().catch(() => ({}));
          toast(body.message || 'The reply was not sent.');
          return;
        }
        // A note has the seq of the message it follows: fetch from there.
        const sent = await response.json().catch(() => ({}));
        if (note && sent.seq) await catchUp(sent.seq - 1);
        if (files) files.clear();
        reply.value = '';
        picked.clear();
        clearTimeout(typingStop);
        setTyping(false);
        await catchUp();
        scrollToBottom();
      } catch (_) {
        toast('The reply was not sent: no connection.');
      } finally {
        composer.classList.remove('sending');
        reply.disabled = false;
        reply.focus();
      }
    });
  }

  // The visitor's typing indicator, hidden after a while without news.
  const typingLine = $('#typing');
  let typingHide = null;
  function showTyping(on) {
    if (!typingLine) return;
    clearTimeout(typingHide);
    typingLine.hidden = !on;
    if (on) typingHide = setTimeout(() => { typingLine.hidden = true; }, 8000);
  }

  // -------------------------------------------------------------- presence

  const STATE_LABEL = { available: 'available', away: 'away', unavailable: 'unavailable', invisible: 'invisible' };
  function showPresence(p) {
    const state = p.connected ? p.state : 'offline';
    $$(`[data-agent="${p.uuid}"]`).forEach((row) => {
      const dot = $('[data-presence-dot]', row);
      const text = $('[data-presence-text]', row);
      if (dot) dot.className = 'dot state-' + state;
      if (text) text.textContent = STATE_LABEL[state] || 'offline';
    });
    if (p.uuid === me) {
      const dot = $('[data-my-presence]');
      if (dot) dot.className = 'dot state-' + p.state;
      const select = $('[data-presence-select]');
      if (select) select.value = p.state;
    }
  }

  // ---------------------------------------------------------------- events

  function roomOf(data) {
    return (data.room && data.room.uuid) || data.room_uuid || data.uuid;
  }

  // A form posted from this page (adding a member, closing, labelling) is
  // already on its way to a fresh page: an event about that same change
  // must not reload first and abort it.
  let leaving = false;
  window.addEventListener('beforeunload', () => { leaving = true; });
  window.addEventListener('pageshow', () => { leaving = false; });
  function reload() {
    if (!leaving) location.reload();
  }

  function onEvent(name, data) {
    if (leaving) return;
    switch (name) {
      case 'chatd_queue_updated':
        refreshLists();
        if (readOnly && roomOf(data) === currentRoom && messages.dataset.url.startsWith('/console/queue/')) {
          // Read before answering: new messages come in; once answered
          // (by us or another agent) the page says where it went.
          if (data.action === 'queued') catchUp();
          else reload();
        }
        if (data.action === 'queued') {
          notify();
          const room = data.room || {};
          const last = room.last_message;
          desktopNotify('A visitor is waiting', last ? last.content : (room.name || ''), null);
        }
        break;
      case 'chatd_user_room_message_created':
        // (On a queued room's page this means it was just answered: the
        // page leaves or reloads on the queue's event.)
        if (messages && !readOnly && roomOf(data) === currentRoom) {
          // A note keeps the seq of the message it follows.
          catchUp(data.private ? data.seq - 1 : undefined);
          if (data.kind === 'visitor') showTyping(false);
        }
        if (data.user_uuid !== me) {
          if (roomOf(data) !== currentRoom || document.hidden) notify();
          if (data.kind !== 'system') {
            const files = Array.isArray(data.attachments) ? data.attachments : [];
            const said = data.content || (files.length ? `Sent ${files.length === 1 ? files[0].name : files.length + ' files'}` : '');
            desktopNotify(data.alias || (data.kind === 'visitor' ? 'Visitor' : 'New message'), said, roomOf(data));
          }
        }
        refreshLists();
        break;
      case 'chatd_user_room_message_updated': {
        if (!messages || roomOf(data) !== currentRoom) break;
        const article = document.getElementById('m-' + data.uuid);
        if (!article) {
          // A row still on its way (fetched before this change): fetch it
          // again once it is in. An older row not shown is left alone.
          if (data.seq > lastSeq()) catchUp(data.seq - 1);
          break;
        }
        if (data.read_at) setTick(article, 'read');
        else if (data.state === 'DELIVERED') setTick(article, 'delivered');
        else if (data.state === 'FAILED') setTick(article, 'failed');
        catchUp(data.seq - 1);
        break;
      }
      case 'chatd_user_room_message_reaction_created':
      case 'chatd_user_room_message_reaction_deleted': {
        if (!messages || roomOf(data) !== currentRoom) break;
        const article = document.getElementById('m-' + data.message_uuid);
        if (article) catchUp(parseInt(article.dataset.seq, 10) - 1);
        break;
      }
      case 'chatd_user_room_read':
        if (messages && roomOf(data) === currentRoom && data.user_uuid !== me && data.up_to_seq) {
          // The visitor read up to here: our replies get their read tick.
          readUpTo = Math.max(readUpTo, data.up_to_seq);
          applyRead();
        }
        refreshLists();
        break;
      case 'chatd_user_room_activity_created':
        if (roomOf(data) === currentRoom && data.user_uuid !== me) showTyping(data.type === 'start_typing');
        break;
      case 'chatd_visitor_connection_updated':
        if (data.room_uuid === currentRoom) {
          const dot = $('[data-visitor-dot]');
          const status = $('[data-visitor-status]');
          if (dot) dot.classList.toggle('on', !!data.connected);
          if (status) status.textContent = data.connected ? 'Online' : 'Offline';
          if (!data.connected) showTyping(false);
        }
        refreshLists();
        break;
      case 'chatd_room_labels_updated': {
        // Labels put on or taken off (here or by another agent), or a
        // label renamed, recoloured or deleted: the lists show them; the
        // open conversation's header too, unless the agent is busy in it.
        const colours = $('link[href^="/console/labels.css"]');
        if (colours) colours.href = '/console/labels.css?t=' + Date.now();
        const menu = $('.label-menu');
        if (roomOf(data) === currentRoom && reply && !reply.value.trim() && !(menu && menu.open)) {
          reload();
          return;
        }
        refreshLists();
        break;
      }
      case 'chatd_room_rated':
        // The visitor rated a closed conversation: its page shows the
        // rating (unless the agent is writing in it), the lists their stars.
        if (roomOf(data) === currentRoom && reply && !reply.value.trim()) {
          reload();
          return;
        }
        refreshLists();
        break;
      case 'chatd_room_state_updated':
        if (roomOf(data) === currentRoom && reply && !reply.value.trim()) {
          // Closed, reopened, or transferred away: show it as it is now.
          reload();
          return;
        }
        refreshLists();
        break;
      case 'chatd_presence_updated':
        showPresence(data);
        break;
      case 'chatd_user_room_created':
        refreshLists();
        notify();
        break;
      case 'chatd_user_room_member_added':
      case 'chatd_user_room_member_removed': {
        const mine = data.user_uuid === me;
        if (roomOf(data) === currentRoom && !readOnly) {
          if (mine && name === 'chatd_user_room_member_removed') {
            // Removed, or left: the room is no longer ours. Leaving from
            // this page, its form's answer gets there first.
            if (data.by_user_uuid !== me) location.href = '/console/inbox';
            else setTimeout(() => { location.href = '/console/inbox?notice=left'; }, 1000);
            return;
          }
          // The members panel shows who is in it now.
          if (reply && !reply.value.trim()) { reload(); return; }
        }
        if (mine && name === 'chatd_user_room_member_added') notify();
        refreshLists();
        break;
      }
      case 'chatd_user_room_mention':
        notify();
        refreshLists();
        desktopNotify('You were mentioned', '', data.room_uuid);
        if (data.room_uuid !== currentRoom) toast('You were mentioned in another room.');
        break;
      default:
        break;
    }
  }

  // The socket: reconnects with backoff; on each (re)connection the lists
  // and the open conversation catch up from the server (the store is the truth).
  let backoff = 1000;
  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/api/websocketd/?token=${encodeURIComponent(token)}&version=2`);
    let pinger = null;
    ws.addEventListener('message', (msg) => {
      let frame;
      try { frame = JSON.parse(msg.data); } catch (_) { return; }
      if (frame.op === 'init') {
        ws.send(JSON.stringify({ op: 'subscribe', data: { event_name: '*' } }));
        ws.send(JSON.stringify({ op: 'start' }));
      } else if (frame.op === 'start') {
        backoff = 1000;
        document.documentElement.dataset.live = 'true';
        pinger = setInterval(() => ws.send(JSON.stringify({ op: 'ping', data: { payload: 'console' } })), 25000);
        refreshLists();
        if (messages) catchUp();
      } else if (frame.op === 'event' && frame.data) {
        onEvent(frame.data.name, frame.data.data || {});
      }
    });
    ws.addEventListener('close', (event) => {
      clearInterval(pinger);
      document.documentElement.dataset.live = 'false';
      if (event.code === 4003) {
        location.href = '/console/login'; // the session ended
        return;
      }
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 30000);
    });
  }
  connect();
  badge();

  // ------------------------------------------------------------- shortcuts

  // The shortcuts overlay is a modal dialog: while it is open Tab and
  // Shift+Tab stay inside it, Escape closes it, and focus goes back to
  // where it was when it opened.
  const help = $('#help');
  let helpOpener = null;
  function helpFocusables() {
    return $$('a[href], button:not([disabled]), input, select, textarea, [tabindex]:not([tabindex="-1"])', help)
      .filter((el) => !el.hidden && el.offsetParent !== null);
  }
  function toggleHelp(show) {
    if (!help) return;
    const open = show === undefined ? help.hidden : show;
    if (open === !help.hidden) return;
    if (open) {
      helpOpener = document.activeElement;
      help.hidden = false;
      $('[data-help-close]', help).focus();
    } else {
      help.hidden = true;
      let back = helpOpener && helpOpener !== document.body ? helpOpener : null;
      if (back && !back.isConnected) back = sameInLists(back); // the lists were refreshed meanwhile
      helpOpener = null;
      if (back) back.focus();
    }
  }
  const helpButton = $('[data-help]');
  if (helpButton) helpButton.addEventListener('click', () => toggleHelp(true));
  if (help) {
    $('[data-help-close]', help).addEventListener('click', () => toggleHelp(false));
    help.addEventListener('click', (event) => { if (event.target === help) toggleHelp(false); });
    help.addEventListener('keydown', (event) => {
      if (event.key !== 'Tab') return;
      const items = helpFocusables();
      if (items.length === 0) return;
      const first = items[0];
      const last = items[items.length - 1];
      const at = items.indexOf(document.activeElement);
      if (event.shiftKey && (at <= 0)) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && (at === -1 || at === items.length - 1)) {
        event.preventDefault();
        first.focus();
      }
    });
    // Focus that lands outside while it is open (a click, a screen
    // reader's own navigation) is brought back.
    document.addEventListener('focusin', (event) => {
      if (!help.hidden && !help.contains(event.target)) $('[data-help-close]', help).focus();
    });
  }

  // Where focus goes on the page a shortcut (or the Answer button) leads
  // to: the reply box after answering, the conversation's row after j/k
  // (so the next j/k works at once).
  const FOCUS_KEY = 'chatgate:console:focus';
  function focusNext(what) {
    try { sessionStorage.setItem(FOCUS_KEY, what); } catch (_) { /* private mode */ }
  }
  document.addEventListener('submit', (event) => {
    if (event.target.matches('form.answer')) focusNext('reply');
  }, true);
  // The browser's own scroll to #latest (for pages without script) would
  // take focus away from what we focus here: this script scrolls itself.
  if (location.hash === '#latest') history.replaceState(history.state, '', location.pathname + location.search);
  (function restoreFocus() {
    let what = null;
    try {
      what = sessionStorage.getItem(FOCUS_KEY);
      sessionStorage.removeItem(FOCUS_KEY);
    } catch (_) { return; }
    if (what === 'reply' && reply && !reply.disabled) {
      reply.focus();
    } else if (what === 'row') {
      const row = $('#lists a.row[aria-current]');
      if (row) {
        row.focus();
        row.scrollIntoView({ block: 'nearest' });
      }
    }
  })();

  function go(step) {
    const rows = $$('#lists a.row[data-room]');
    if (rows.length === 0) return;
    const at = rows.findIndex((row) => row.dataset.room === currentRoom);
    const next = at === -1 ? (step > 0 ? 0 : rows.length - 1) : at + step;
    if (next >= 0 && next < rows.length) {
      focusNext('row');
      location.href = rows[next].href;
    }
  }

  document.addEventListener('keydown', (event) => {
    if (help && !help.hidden) {
      if (event.key === 'Escape') {
        event.preventDefault();
        toggleHelp(false);
      }
      return; // the page's shortcuts wait while the dialog is open
    }
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.closest('input, textarea, select, [contenteditable=true]')) return;
    switch (event.key) {
      case 'j': go(1); break;
      case 'k': go(-1); break;
      case 'r':
        if (reply) { event.preventDefault(); reply.focus(); }
        break;
      case 'a': {
        // The queued room being read, or the visitor waiting longest.
        const oldest = $('form.answer-this') || $('[data-list=queue] form.answer');
        if (oldest) oldest.requestSubmit();
        else toast('No one is waiting.');
        break;
      }
      case '?': toggleHelp(true); break;
      default: return;
    }
  });
})();
