// A small FAQ bot for chatgate (README, "Applications (bots)"): Node.js 20,
// nothing but Node itself. Give a channel this application as its `bot`:
// every new conversation comes to the bot first. It answers a few keywords,
// offers quick replies, and hands the conversation over to the queue (where
// the channel's assignment applies) when the visitor asks for a human.
//
//   CHATGATE_URL=http://127.0.0.1:8080 CHATGATE_APP_TOKEN=cga_... node bot.mjs
//
// It polls its rooms (conversations:read), replies (messages:write) and
// hands over (conversations:write). Polling keeps it dependency-free; the
// event socket (/api/websocketd/) or a webhook endpoint work as well.

const BASE = (process.env.CHATGATE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const TOKEN = process.env.CHATGATE_APP_TOKEN;
const POLL_MS = Number(process.env.POLL_MS || 1000);
if (!TOKEN) throw new Error('set CHATGATE_APP_TOKEN to the token POST /applications answered');

const HUMAN = { title: 'Talk to a human', payload: 'human' };
const MENU = [
  { title: 'Opening hours', payload: 'hours' },
  { title: 'Shipping', payload: 'shipping' },
  { title: 'Returns', payload: 'returns' },
  HUMAN,
];
const ANSWERS = [
  { keys: ['hours', 'open', 'opening'], text: 'We are open Monday to Friday, 9:00 to 17:30.' },
  { keys: ['shipping', 'delivery', 'ship'], text: 'Orders ship within 2 working days; delivery takes 3 to 5 days.' },
  { keys: ['returns', 'return', 'refund'], text: 'You can return any item within 30 days for a full refund.' },
];

async function api(method, path, body) {
  const res = await fetch(`${BASE}/api/chatd/1.0${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${data && data.error_id}`);
  return data;
}

const say = (room, content, quick_replies = MENU) =>
  api('POST', `/users/me/rooms/${room}/messages`, quick_replies.length ? { content, quick_replies } : { content });

/** Answers one visitor message of `room`; true when the room was handed over. */
async function answer(room, message) {
  const choice = message.postback || '';
  const text = (message.content || '').toLowerCase();
  if (choice === 'human' || /\b(human|person|agent)\b/.test(text)) {
    await say(room, 'Connecting you with a member of our team…', []);
    await api('POST', `/users/me/rooms/${room}/handover`);
    return true;
  }
  const found = ANSWERS.find((a) => a.keys.includes(choice) || a.keys.some((k) => text.includes(k)));
  if (found) await say(room, found.text, [HUMAN]);
  else await say(room, 'Hi! I am the FAQ bot. What would you like to know?');
  return false;
}

const seen = new Map(); // room uuid -> the last seq answered

async function poll() {
  const { items } = await api('GET', '/users/me/rooms');
  for (const room of items) {
    if (room.kind !== 'visitor' || room.state !== 'open') continue;
    const after = seen.get(room.uuid) || 0;
    const page = await api('GET', `/users/me/rooms/${room.uuid}/messages?direction=asc&after_seq=${after}&limit=50`);
    const fresh = page.items.filter((m) => m.kind === 'visitor');
    for (const m of page.items) seen.set(room.uuid, Math.max(seen.get(room.uuid) || 0, m.seq));
    // Only the newest question needs an answer.
    if (fresh.length && (await answer(room.uuid, fresh[fresh.length - 1]))) seen.delete(room.uuid);
  }
}

console.log(`faq-bot: polling ${BASE} every ${POLL_MS} ms`);
for (;;) {
  await poll().catch((err) => console.error(`faq-bot: ${err.message}`));
  await new Promise((r) => setTimeout(r, POLL_MS));
}
