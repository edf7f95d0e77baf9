// Server-sent events over fetch (EventSource cannot send the Authorization header):
// splits the byte stream into {event, data} messages.

export class SseParser {
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.buffer = "";
    this.event = "";
    this.data = [];
  }

  push(text) {
    this.buffer += text;
    let newline;
    while ((newline = this.buffer.search(/\r?\n/)) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(this.buffer[newline] === "\r" ? newline + 2 : newline + 1);
      this.line(line);
    }
  }

  line(line) {
    if (line === "") {
      if (this.data.length) this.onMessage({ event: this.event || "message", data: this.data.join("\n") });
      this.event = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return; // a comment: subscribed, keepalive
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") this.event = value;
    else if (name === "data") this.data.push(value);
  }
}

// Per reduction, the latest values per key and a short history of recent periods.
export class ResultsTable {
  constructor(periods = 20) {
    this.periods = periods;
    this.reductions = new Map(); // "channel/id" → {channel, id, seen, keys: Map}
  }

  // One results message = one period of one reduction.
  add(message) {
    const key = `${message.channel}/${message.id}`;
    let reduction = this.reductions.get(key);
    if (!reduction) {
      reduction = { channel: message.channel, id: message.id, periods: 0, keys: new Map() };
      this.reductions.set(key, reduction);
    }
    reduction.periods += 1;
    const present = new Set();
    for (const result of message.results || []) {
      const name = JSON.stringify(result.key);
      present.add(name);
      let row = reduction.keys.get(name);
      if (!row) {
        row = { key: result.key, latest: null, history: [] };
        reduction.keys.set(name, row);
      }
      row.latest = result.value;
      row.history.push(result.value);
    }
    for (const [name, row] of reduction.keys) {
      if (!present.has(name)) row.history.push(null);
      if (row.history.length > this.periods) row.history.splice(0, row.history.length - this.periods);
    }
    return reduction;
  }
}
