// Run in the page by test_ui.py::test_pure_modules_behave: the UI's pure modules,
// in the browser they are written for. Returns what the test asserts on.
(async () => {
  const { DeltaBatcher } = await import('/ui/assets/js/lib/batcher.js');
  const form = await import('/ui/assets/js/lib/schemaform.js');
  const { SseParser, ResultsTable } = await import('/ui/assets/js/lib/sse.js');
  const live = await import('/ui/assets/js/lib/live.js');
  const diff = await import('/ui/assets/js/lib/linediff.js');
  const out = {};

  // Batcher with a manual clock: +1 x5 then a pause is one +5; +1 -1 sends nothing.
  const timers = new Map(); let next = 0;
  const clock = { set: (f) => { timers.set(++next, f); return next; }, clear: (h) => timers.delete(h) };
  const sent = [];
  const batcher = new DeltaBatcher((key, sum) => { sent.push([key, sum]); return Promise.resolve(); }, 400, clock);
  for (let i = 0; i < 5; i++) batcher.add('a', 1);
  batcher.add('b', 1); batcher.add('b', -1);
  for (const f of [...timers.values()]) f();
  out.sent = sent;

  out.paths = [form.jsonPath(['a', 'b']), form.jsonPath(['a', 0, 'odd key', "it's"])];
  out.parsed = form.parsePath("$.a[0]['odd key']['it\\'s'].b");
  out.set = form.setAt({ a: { b: 1, c: 2 } }, ['a', 'b'], undefined);
  out.setNew = form.setAt({}, ['x', 'y'], 3);
  out.field = form.fieldFor(['$', '$.jobs', '$.jobs.longPoll', '$.jobs.longPoll.maxWaitSeconds'], '$.jobs.longPoll.defaultWaitSeconds');
  const text = JSON.stringify({ jobs: { longPoll: { maxWaitSeconds: 1 } } }, null, 2);
  const at = form.locate(text, ['jobs', 'longPoll', 'maxWaitSeconds']);
  out.located = text.slice(at[0], at[1]);
  const tree = form.fieldsOf({ type: 'object', properties: { n: { type: 'integer', minimum: 1, default: 2 }, e: { enum: ['x', 'y'] }, o: { type: 'object', additionalProperties: true } } });
  out.kinds = tree.children.map((c) => [c.path, c.kind, c.bounds]);

  const messages = [];
  const parser = new SseParser((m) => messages.push(m));
  for (const piece of [': subscribed\n\nda', 'ta: {"a":1}\n', '\nevent: dropped\ndata: {"dropped": 2}\r\n\r\n']) parser.push(piece);
  out.messages = messages;

  const table = new ResultsTable(3);
  for (let i = 0; i < 4; i++) {
    table.add({ channel: 'c', id: 'r', results: i === 2 ? [] : [{ key: ['k'], value: { count: i } }] });
  }
  const row = table.reductions.get('c/r').keys.get('["k"]');
  out.history = row.history.map((v) => (v ? v.count : null));
  out.latest = row.latest.count;

  // The live-data loop, with a fake document and clock.
  const ticks = async (n = 5) => { for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 0)); };
  const failure = (status, retryAfter = null) => Object.assign(new Error(`status ${status}`), { status, retryAfter });
  const doc = new EventTarget();
  doc.hidden = false;
  const show = (hidden) => { doc.hidden = hidden; doc.dispatchEvent(new Event('visibilitychange')); };
  const waits = [];
  const quick = (ms) => { waits.push(ms); return Promise.resolve(); };
  // Five failures (the last with Retry-After: 3), one answer, then a poll left pending.
  const script = [failure(503), failure(503), failure(0), failure(503), failure(503, 3), 'answer'];
  const causes = [];
  const statuses = [];
  const errors = [];
  const blocking = (signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))));
  const loop = new live.Live(async (signal, self) => {
    causes.push(self.cause);
    const next = script.shift();
    if (next === undefined) return blocking(signal);
    if (next instanceof Error) throw next;
    return next;
  }, { doc, sleep: quick, onStatus: (s) => statuses.push(s), onError: (e) => errors.push(e.status) });
  loop.start();
  const firstSettled = await loop.first;
  await ticks();
  out.liveFirst = firstSettled && firstSettled.status;
  out.liveWaits = waits.slice();
  out.liveErrors = errors.slice();
  out.liveCausesBeforeHide = causes.slice();
  show(true); // hidden: the pending session is aborted, nothing new starts
  await ticks();
  const whileHidden = causes.length;
  await ticks(20);
  out.liveSessionsWhileHidden = causes.length - whileHidden;
  out.liveStatusHidden = statuses[statuses.length - 1];
  show(false); // shown again: a session at once
  await ticks();
  out.liveCauseAfterShow = causes[causes.length - 1];
  loop.stop();
  await ticks();
  const afterStop = causes.length;
  show(true); show(false);
  await ticks();
  out.liveSessionsAfterStop = causes.length - afterStop;

  // 401 stops for good (the shell asks for a token); 404 is retried unless declared fatal.
  let sessions401 = 0;
  const stopped = new live.Live(async () => { sessions401++; throw failure(401); }, { doc, sleep: quick });
  stopped.start();
  await ticks(10);
  out.live401 = [sessions401, stopped.stopped];

  // A poll's pause is cut short by refresh(); a refresh during a session runs it again.
  let wake = null;
  const gaps = [];
  let reads = 0;
  let release = null;
  const held = new live.Live(async () => {
    reads++;
    if (reads === 2) await new Promise((r) => { release = r; });
  }, { doc, gapMs: 5000, sleep: (ms, register) => { gaps.push(ms); return new Promise((r) => register((wake = r))); } });
  held.start();
  await ticks();
  const beforeRefresh = reads;
  held.refresh(); // wakes the 5 s pause
  await ticks();
  held.refresh(); // during read 2: read 3 follows at once, without a pause
  release();
  await ticks();
  out.liveRefresh = [beforeRefresh, reads, gaps];
  held.stop();
  out.retryDelays = [0, 1, 2, 3, 9].map((n) => live.retryDelay({}, live.BACKOFF_MS, n)).concat(live.retryDelay({ retryAfter: 600 }, live.BACKOFF_MS, 0));

  // The line diff: a patch `diff -u` would print, and the same for JSON definitions.
  out.diff = diff.unified('a\nb\nc\nd\ne\nf\ng\nh\ni\n', 'a\nB\nc\nd\ne\nf\ng\nh\ni\nj\n', { from: 'v1', to: 'v2', context: 1 });
  out.diffSame = diff.unified('x\n', 'x\n');
  out.diffFromEmpty = diff.unified('', 'one\ntwo\n');
  out.diffOps = diff.diffLines('k\nx\nk\n', 'k\ny\nk\n').map((l) => `${l.op}${l.text}:${l.a}:${l.b}`);
  out.canonical = diff.canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null } });
  return out;
})();
