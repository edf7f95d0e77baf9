// Debounced deltas: quick clicks on +1/-1 of one task group become one updatecounts call
// with their sum (five clicks send +5), sent once the clicks pause.

export class DeltaBatcher {
  constructor(send, delayMs = 400, timers = { set: (f, ms) => setTimeout(f, ms), clear: (t) => clearTimeout(t) }) {
    this.send = send;
    this.delayMs = delayMs;
    this.timers = timers;
    this.sums = new Map();
    this.handles = new Map();
  }

  add(key, delta) {
    const sum = (this.sums.get(key) || 0) + delta;
    this.sums.set(key, sum);
    this.timers.clear(this.handles.get(key));
    this.handles.set(key, this.timers.set(() => this.flush(key), this.delayMs));
    return sum;
  }

  pending(key) {
    return this.sums.get(key) || 0;
  }

  cancel(key) {
    this.timers.clear(this.handles.get(key));
    this.handles.delete(key);
    this.sums.delete(key);
  }

  // Sends what is pending now; a sum of zero (+1 then -1) sends nothing, since a delta of
  // 0 means "stop the task group" to the API.
  flush(key) {
    const sum = this.pending(key);
    this.cancel(key);
    if (sum === 0) return Promise.resolve(null);
    return this.send(key, sum);
  }

  cancelAll() {
    for (const key of [...this.handles.keys()]) this.cancel(key);
  }
}
