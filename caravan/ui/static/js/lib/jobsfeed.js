// The jobs view, live: a chain of waitIndex long polls (Nomad's blocking queries).
// Each answer's `waitIndex` header is the next request's; a change anywhere (kubectl,
// another browser) answers the pending poll at once. Nothing is polled while the tab is
// hidden; on return one poll with the last index catches up immediately.

import { request } from "../api.js";

const WAIT = "60s";
const RETRY_MS = [1000, 2000, 5000, 10000];

export class JobsFeed {
  constructor({ onJobs, onError = () => {}, onLive = () => {} }) {
    this.onJobs = onJobs;
    this.onError = onError;
    this.onLive = onLive;
    this.index = null;
    this.stopped = true;
    this.controller = null;
    this.failures = 0;
    this.visibility = () => this.visibilityChanged();
  }

  start() {
    this.stopped = false;
    document.addEventListener("visibilitychange", this.visibility);
    this.loop();
  }

  stop() {
    this.stopped = true;
    document.removeEventListener("visibilitychange", this.visibility);
    if (this.controller) this.controller.abort();
  }

  visibilityChanged() {
    if (document.hidden) {
      if (this.controller) this.controller.abort();
      this.onLive("paused (tab hidden)");
    } else if (!this.running && !this.stopped) {
      this.loop();
    }
  }

  async loop() {
    if (this.running) return;
    this.running = true;
    try {
      while (!this.stopped && !document.hidden) {
        await this.once();
      }
    } finally {
      this.running = false;
    }
  }

  async once() {
    this.controller = new AbortController();
    const long = this.index !== null;
    try {
      const response = await request("GET", long ? `/v1/jobs?wait=${WAIT}` : "/v1/jobs", {
        raw: true,
        signal: this.controller.signal,
        headers: long ? { waitIndex: this.index } : {},
      });
      const jobs = await response.json();
      // An index that goes backwards means the server restarted: start over from it.
      this.index = response.headers.get("waitIndex");
      this.failures = 0;
      this.onLive(`live · index ${this.index}`);
      this.onJobs(jobs);
    } catch (error) {
      if (error.name === "AbortError") return;
      this.onError(error);
      this.onLive("reconnecting…");
      const delay = RETRY_MS[Math.min(this.failures++, RETRY_MS.length - 1)];
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
