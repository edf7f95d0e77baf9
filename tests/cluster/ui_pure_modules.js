// Run in the page by test_ui.py::test_pure_modules_behave: the UI's pure modules,
// in the browser they are written for. Returns what the test asserts on.
(async () => {
  const { DeltaBatcher } = await import('/ui/assets/js/lib/batcher.js');
  const form = await import('/ui/assets/js/lib/schemaform.js');
  const { SseParser, ResultsTable } = await import('/ui/assets/js/lib/sse.js');
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
  return out;
})();
