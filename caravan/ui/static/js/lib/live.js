// Live data, the one way every page follows the server. A `Live` runs one "session" after
// another: a waitIndex long poll (Nomad's blocking queries), one read of a periodic
// poll, or one open stream (SSE, a followed log). It
// - backs off after a failure (1, 2, 5, then every 10 s; the server's Retry-After when
//   it gave one) and starts over at once after a success;
// - pauses while the tab is hidden (the session in flight is aborted, nothing new
//   starts) and resumes the moment the tab is shown again (a long poll resumes with its
//   last index, so it catches up with one answer);
// - stops on what retrying cannot mend (401: the shell asks for a token).
// The loop is pure over its inputs (the document, the sleep), so the tests drive it with
// a fake document and clock.

import { request } from "../api.js";

export const BACKOFF_MS = [1000, 2000, 5000, 10000];
// `?live=0` in the address: each feed draws its first answer and stops there, so no
// request stays open (a headless screenshot with a virtual-time budget, docs/ui.md).
const FOLLOW = !(globalThis.location && new URLSearchParams(globalThis.location.search).get("live") === "0");
const MAX_RETRY_AFTER_MS = 60000;

// How a session comes to run: the first time, after a pause while hidden, or again after
// the previous one ended (a poll answered, a stream closed, a failure waited out).
export const START = "start";
export const VISIBLE = "visible";
export const AGAIN = "again";

function defaultSleep(ms, wake) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export class Live {
  // session(signal, live) → a promise: one poll or one stream, until it ends.
  constructor(session, options = {}) {
    this.session = session;
    this.gapMs = options.gapMs || 0; // pause after a session that ended well
    this.onError = options.onError || (() => {});
    this.onStatus = options.onStatus || (() => {});
    this.fatal = options.fatal || ((error) => error.status === 401);
    this.doc = options.doc || globalThis.document;
    this.sleep = options.sleep || defaultSleep;
    this.backoff = options.backoff || BACKOFF_MS;
    this.follow = options.follow ?? FOLLOW;
    this.failures = 0;
    this.stopped = true;
    this.running = false;
    this.cause = START;
    this.controller = null;
    this.wakeUp = null;
    this.again = false;
    this.settled = false;
    // Settles at the first answer or the first failure: the page's first view is drawn.
    this.first = new Promise((resolve) => {
      this.settleFirst = resolve;
    });
    this.visibility = () => this.visibilityChanged();
  }

  get hidden() {
    return Boolean(this.doc && this.doc.hidden);
  }

  start() {
    if (!this.stopped) return this;
    this.stopped = false;
    if (this.doc) this.doc.addEventListener("visibilitychange", this.visibility);
    this.kick();
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.doc) this.doc.removeEventListener("visibilitychange", this.visibility);
    this.interrupt();
    this.settle();
  }

  // Runs the session now: wakes a pause between polls, or runs again right after the
  // session in flight (which may have been sent before the change the caller knows of).
  refresh() {
    if (this.wakeUp) this.wakeUp();
    else this.again = true;
  }

  status(text) {
    this.onStatus(text);
  }

  interrupt() {
    if (this.controller) this.controller.abort();
    if (this.wakeUp) this.wakeUp();
  }

  visibilityChanged() {
    if (this.stopped) return;
    if (this.hidden) {
      this.interrupt();
      this.status("paused (tab hidden)");
    } else {
      this.cause = VISIBLE;
      this.kick();
    }
  }

  settle(error) {
    if (this.settled) return;
    this.settled = true;
    this.settleFirst(error || null);
  }

  kick() {
    if (!this.running && !this.stopped && !this.hidden) this.loop();
  }

  async pause(ms) {
    await this.sleep(ms, (wake) => {
      this.wakeUp = wake;
    });
    this.wakeUp = null;
  }

  async loop() {
    this.running = true;
    try {
      while (!this.stopped && !this.hidden) {
        const controller = new AbortController();
        this.controller = controller;
        this.again = false;
        try {
          await this.session(controller.signal, this);
          this.cause = AGAIN;
          this.failures = 0;
          this.settle();
          if (!this.follow) {
            this.stop();
            this.status("not following (live=0)");
            return;
          }
          if (this.gapMs && !this.again && !controller.signal.aborted) await this.pause(this.gapMs);
        } catch (error) {
          if (controller.signal.aborted || (error && error.name === "AbortError")) continue;
          this.cause = AGAIN;
          this.onError(error);
          this.settle(error);
          if (this.fatal(error) || !this.follow) {
            this.stop();
            this.status("stopped");
            return;
          }
          const delay = retryDelay(error, this.backoff, this.failures++);
          this.status(`reconnecting in ${Math.round(delay / 1000)} s…`);
          await this.pause(delay);
        }
      }
    } finally {
      this.running = false;
      this.controller = null;
    }
  }
}

// The wait before retry n (0-based): the server's Retry-After when it gave one (bounded),
// else the backoff table, whose last step repeats.
export function retryDelay(error, backoff, n) {
  const after = error && Number(error.retryAfter);
  if (after > 0) return Math.min(after * 1000, MAX_RETRY_AFTER_MS);
  return backoff[Math.min(n, backoff.length - 1)];
}

// A chain of waitIndex long polls on a route that answers the header `waitIndex`: each
// answer's index is the next request's, so a change anywhere answers the pending poll at
// once. `onData(body)` gets every answer. A route that gives no index is polled every
// `everyMs` instead of in a tight loop.
export function longPoll(path, { onData, wait = "60s", everyMs = 5000, ...options }) {
  let index = null;
  const session = async (signal, live) => {
    const waiting = index !== null;
    const separator = path.includes("?") ? "&" : "?";
    const response = await request("GET", waiting ? `${path}${separator}wait=${wait}` : path, {
      raw: true,
      signal,
      headers: waiting ? { waitIndex: index } : {},
    });
    const body = await response.json();
    // A smaller index than ours means the server restarted: we simply follow its count.
    index = response.headers.get("waitIndex");
    live.gapMs = index === null ? everyMs : 0;
    live.status(index === null ? "live" : `live · index ${index}`);
    onData(body);
  };
  const live = new Live(session, options);
  live.index = () => index;
  return live;
}

// A plain GET every `everyMs` (for what has no long poll), and at once on refresh().
export function poll(path, { onData, everyMs = 5000, ...options }) {
  return new Live(
    async (signal, live) => {
      const body = await request("GET", typeof path === "function" ? path() : path, { signal });
      live.status("live");
      onData(body);
    },
    { gapMs: everyMs, ...options },
  );
}

// A long response read as text as it arrives (SSE, a followed log), reopened when it ends
// or fails. `path(cause)` may differ for the first open, a reopen after a pause while
// hidden, and a reopen after the stream ended. `onOpen(response, cause)` runs once per open.
export function stream(path, { onOpen = () => {}, onText, reopenMs = 1000, ...options }) {
  return new Live(
    async (signal, live) => {
      if (!live.follow) return; // live=0: a stream never ends, so it is not opened at all
      const cause = live.cause;
      const response = await request("GET", typeof path === "function" ? path(cause) : path, { raw: true, signal });
      onOpen(response, cause);
      live.failures = 0;
      live.settle();
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        onText(decoder.decode(value, { stream: true }));
      }
      const rest = decoder.decode();
      if (rest) onText(rest);
    },
    { gapMs: reopenMs, ...options },
  );
}
