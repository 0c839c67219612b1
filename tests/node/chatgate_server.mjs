// Shared by the end-to-end tests (stomp_echo.test.mjs, and wazo_helpers.mjs
// for the @wazo/sdk tests): start a real chatgate process on a free port with
// a fresh SQLite database, read what its first start prints, stop it again;
// plus the small timing helpers the tests have in common.
//
// The chatgate binary is taken from $CHATGATE_BIN, defaulting to
// <repo>/target/debug/chatgate (build it with `cargo build --bin chatgate`).
//
// This file is not a test file itself (its name matches none of node --test's
// patterns).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CHATGATE_BIN =
  process.env.CHATGATE_BIN || path.join(REPO_ROOT, 'target', 'debug', 'chatgate');

export const STARTUP_TIMEOUT_MS = 30_000;
export const SHUTDOWN_TIMEOUT_MS = 10_000;
export const WAIT_MS = 10_000;
export const TEST_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------
// Generic helpers
// ---------------------------------------------------------------------------

/** Rejects with a descriptive error if `promise` does not settle within `ms`. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A FIFO of values pushed by callbacks, consumed with `next()` / `find()`. */
export class AsyncQueue {
  #items = [];
  #waiters = [];
  seen = []; // everything ever pushed, for error messages

  push(item) {
    this.seen.push(item);
    const waiter = this.#waiters.shift();
    if (waiter) waiter(item);
    else this.#items.push(item);
  }

  next(ms, what) {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift());
    let resolveFn;
    const p = new Promise((resolve) => {
      resolveFn = resolve;
      this.#waiters.push(resolve);
    });
    return withTimeout(p, ms, what).catch((err) => {
      // Do not let a timed-out waiter swallow a later item.
      const i = this.#waiters.indexOf(resolveFn);
      if (i >= 0) this.#waiters.splice(i, 1);
      throw err;
    });
  }

  /** The first item (now or later, within `ms`) for which `pred` is true; others are dropped. */
  async find(pred, ms, what) {
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      let item;
      try {
        item = await this.next(Math.max(left, 0), what);
      } catch (err) {
        err.message += `\n--- received so far ---\n${this.seen.map((x) => JSON.stringify(x)).join('\n')}`;
        throw err;
      }
      if (pred(item)) return item;
    }
  }
}

// ---------------------------------------------------------------------------
// chatgate process
// ---------------------------------------------------------------------------

/** The running chatgate; filled in by startServer(). */
export const server = {
  proc: null,
  exited: null, // Promise resolved with {code, signal} when the process exits
  tmpDir: null, // holds the SQLite database; removed by stopServer()
  baseUrl: null, // http://127.0.0.1:PORT
  wsUrl: null, // ws://127.0.0.1:PORT/ws.chatplugin, the visitor STOMP socket
  host: null, // 127.0.0.1:PORT, the @wazo/sdk "server"
  adminEmail: null,
  adminPassword: null,
  demoChannelId: null,
  stdout: '', // everything chatgate printed, for failure messages
  stderr: '',
};

/**
 * Starts chatgate on 127.0.0.1:0 with a fresh SQLite database in a new temp
 * directory and resolves once it has printed its first-start lines and the
 * address it listens on.
 */
export async function startServer() {
  server.tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chatgate-node-test-'));
  const info = await spawnServer('127.0.0.1:0', true);
  server.baseUrl = info.baseUrl;
  server.wsUrl = info.baseUrl.replace(/^http/, 'ws') + '/ws.chatplugin';
  server.host = new URL(info.baseUrl).host;
  server.adminEmail = info.email;
  server.adminPassword = info.password;
  server.demoChannelId = info.channelId;
}

/**
 * Stops chatgate and starts it again on the same address with the same
 * database (what a deploy or a crash-and-restart does to connected clients).
 * `whileStopped` runs between the two, when nothing listens.
 */
export async function restartServer(whileStopped = async () => {}) {
  await stopServer({ keepData: true });
  await whileStopped();
  // The port was just released; binding it again may need a moment.
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    try {
      await spawnServer(server.host, false);
      return;
    } catch (err) {
      if (Date.now() > deadline || !/exited during startup/.test(err.message)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

async function spawnServer(listen, firstStart) {
  if (!fs.existsSync(CHATGATE_BIN)) {
    throw new Error(
      `chatgate binary not found at ${CHATGATE_BIN}; ` +
        'build it with `cargo build --bin chatgate` or set CHATGATE_BIN',
    );
  }
  server.stdout = '';
  const proc = spawn(CHATGATE_BIN, [], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      CHATGATE_LISTEN: listen,
      CHATGATE_DATABASE_URL: path.join(server.tmpDir, 'chatgate.db'),
      RUST_LOG: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.proc = proc;
  server.exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk) => {
    server.stderr += chunk;
  });

  // The first start with an empty database prints (src/main.rs):
  //   admin login:    <email>
  //   admin password: <password>
  //   demo channel:   <uuid>
  //   ...
  //   chatgate listening on http://127.0.0.1:PORT
  // A later start prints only the last line.
  const ready = new Promise((resolve, reject) => {
    const check = () => {
      const email = server.stdout.match(/admin login:\s+(\S+)/);
      const password = server.stdout.match(/admin password:\s+(\S+)/);
      const channel = server.stdout.match(/demo channel:\s+([0-9a-f-]{36})/);
      const listening = server.stdout.match(/listening on (http:\/\/\S+)/);
      if (listening && (!firstStart || (email && password && channel))) {
        resolve({
          email: email?.[1],
          password: password?.[1],
          channelId: channel?.[1],
          baseUrl: listening[1].replace(/\/+$/, ''),
        });
      }
    };
    proc.stdout.on('data', (chunk) => {
      server.stdout += chunk;
      check();
    });
    proc.once('error', (err) => reject(new Error(`failed to start ${CHATGATE_BIN}: ${err.message}`)));
    proc.once('exit', (code, signal) =>
      reject(new Error(`chatgate exited during startup (code ${code}, signal ${signal})`)),
    );
  });

  try {
    return await withTimeout(
      ready,
      STARTUP_TIMEOUT_MS,
      firstStart
        ? 'chatgate to print "admin login:", "admin password:", "demo channel: <uuid>" ' +
            'and "listening on http://..."'
        : 'chatgate to print "listening on http://..."',
    );
  } catch (err) {
    err.message +=
      `\n--- chatgate stdout ---\n${server.stdout}` + `\n--- chatgate stderr ---\n${server.stderr}`;
    throw err;
  }
}

/**
 * Ends chatgate (SIGTERM, then SIGKILL after a timeout) and removes its temp
 * directory, unless `keepData` (for restartServer).
 */
export async function stopServer({ keepData = false } = {}) {
  const proc = server.proc;
  if (proc && proc.exitCode === null && proc.signalCode === null) {
    proc.kill('SIGTERM');
    try {
      await withTimeout(server.exited, SHUTDOWN_TIMEOUT_MS, 'chatgate to exit after SIGTERM');
    } catch (err) {
      proc.kill('SIGKILL');
      await server.exited;
      throw err;
    }
  }
  if (proc) {
    // Do not let leftover pipes (e.g. held by a grandchild) keep node alive.
    proc.stdout.destroy();
    proc.stderr.destroy();
  }
  if (server.tmpDir && !keepData) fs.rmSync(server.tmpDir, { recursive: true, force: true });
}

/** Wraps a test body so that chatgate's stderr is shown when it fails. */
export function withServerLogs(fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (err) {
      console.error(`--- chatgate stderr (test "${t.name}" failed) ---\n${server.stderr}`);
      throw err;
    }
  };
}
