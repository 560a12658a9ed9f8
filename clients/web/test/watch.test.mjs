// Unit tests of the audience side of the web client: `watch` against a fake badge server, clock and
// page, and `track`'s onCount against a fake edge.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { track, watch } from '../livecount.js';
import { manualClock, settle } from './clock.mjs';

/** A badge server with a count, an ETag, a Cache-Control and a switch to fail; a manual clock. */
function badgeWorld({ maxAge = 1 } = {}) {
  const clock = manualClock(0);
  const server = { viewers: 5, failing: false, requests: [] };
  const document = Object.assign(new EventTarget(), { visibilityState: 'visible' });
  const headers = (h) => ({ get: (name) => h[name.toLowerCase()] ?? null });
  return {
    server,
    document,
    seen: [],
    options: {
      endpoint: 'https://badge.example/',
      random: () => 0.5, // no jitter: 0.8 + 0.4 * 0.5 = 1
      document,
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      fetch: async (url, init) => {
        server.requests.push({ at: clock.now(), url, etag: init.headers['if-none-match'] });
        if (server.failing) return { ok: false, status: 503, headers: headers({}) };
        const etag = `W/"${server.viewers}"`;
        const h = headers({ etag, 'cache-control': `public, max-age=${maxAge}` });
        if (init.headers['if-none-match'] === etag) return { ok: false, status: 304, headers: h };
        return { ok: true, status: 200, headers: h, json: async () => ({ viewers: server.viewers, asOf: clock.now() / 1000 }) };
      },
    },
    advance: clock.advance,
    pending: clock.pending,
  };
}


test('watch polls the badge every interval, calls onCount when the count changes, and revalidates with the ETag', async () => {
  const w = badgeWorld();
  const watcher = watch('launch', (v) => w.seen.push(v), w.options);
  await w.advance(0);
  assert.deepEqual(w.seen, [5]);
  assert.equal(w.server.requests[0].url, 'https://badge.example/api/streams/launch/viewers');
  await w.advance(10_000);
  assert.equal(w.server.requests.length, 2);
  assert.equal(w.server.requests[1].etag, 'W/"5"', 'a conditional request');
  assert.deepEqual(w.seen, [5], 'a 304 changes nothing');
  w.server.viewers = 7;
  await w.advance(10_000);
  assert.deepEqual(w.seen, [5, 7]);
  watcher.stop();
  await w.advance(60_000);
  assert.equal(w.server.requests.length, 3, 'stopped');
});

test('watch never polls faster than the server lets the answer be kept', async () => {
  const w = badgeWorld({ maxAge: 30 });
  watch('launch', () => {}, { ...w.options, intervalMs: 5_000 });
  await w.advance(0);
  await w.advance(29_000);
  assert.equal(w.server.requests.length, 1);
  await w.advance(1_000);
  assert.equal(w.server.requests.length, 2);
});

test('jitter spreads the polls of many watchers between 0.8 and 1.2 intervals', async () => {
  for (const [random, wait] of [
    [0, 8_000],
    [1, 12_000],
  ]) {
    const w = badgeWorld();
    watch('launch', () => {}, { ...w.options, random: () => random });
    await w.advance(0);
    await w.advance(wait - 1);
    assert.equal(w.server.requests.length, 1, `random ${random}`);
    await w.advance(2);
    assert.equal(w.server.requests.length, 2, `random ${random}`);
  }
});

test('a hidden tab does not poll; shown again, it polls at once', async () => {
  const w = badgeWorld();
  watch('launch', (v) => w.seen.push(v), w.options);
  await w.advance(0);
  w.document.visibilityState = 'hidden';
  w.document.dispatchEvent(new Event('visibilitychange'));
  await w.advance(120_000);
  assert.equal(w.server.requests.length, 1, 'no poll while hidden');
  assert.equal(w.pending(), 0, 'no timer left running');
  w.server.viewers = 9;
  w.document.visibilityState = 'visible';
  w.document.dispatchEvent(new Event('visibilitychange'));
  await w.advance(0);
  assert.equal(w.server.requests.length, 2);
  assert.deepEqual(w.seen, [5, 9]);
});

test('errors back off (doubling, up to retryMaxMs) and recover', async () => {
  const w = badgeWorld();
  w.server.failing = true;
  watch('launch', (v) => w.seen.push(v), w.options);
  await w.advance(0);
  const at = () => w.server.requests.map((r) => r.at);
  await w.advance(200_000);
  const gaps = at().slice(1).map((t, i) => t - at()[i]);
  assert.deepEqual(gaps.slice(0, 3), [20_000, 40_000, 60_000]);
  assert.ok(gaps.every((g) => g <= 60_000));
  w.server.failing = false;
  await w.advance(60_000);
  assert.deepEqual(w.seen, [5]);
});

test('watch checks its arguments', () => {
  const w = badgeWorld();
  assert.throws(() => watch('bad id', () => {}, w.options), /streamId/);
  assert.throws(() => watch('launch', null, w.options), /onCount/);
  assert.throws(() => watch('launch', () => {}, { ...w.options, endpoint: '' }), /endpoint/);
  assert.throws(() => watch('launch', () => {}, { ...w.options, intervalMs: 10 }), /intervalMs/);
});

test("track's onCount gets the viewers the edge answers each event with", async () => {
  const seen = [];
  let timers = [];
  const media = Object.assign(new EventTarget(), { paused: true, readyState: 0 });
  track(media, {
    endpoint: 'http://localhost:8080/events',
    streamId: 'launch',
    storage: null,
    now: () => 1_700_000_000_000,
    setTimeout: (f, ms) => timers.push({ f, ms }),
    clearTimeout: () => {},
    window: new EventTarget(),
    document: new EventTarget(),
    randomUUID: () => 'viewer-1',
    onCount: (viewers) => seen.push(viewers),
    fetch: async () => ({ ok: true, status: 202, json: async () => ({ viewers: 42, asOf: 1_700_000_000 }) }),
  });
  media.paused = false;
  media.dispatchEvent(new Event('playing'));
  await settle();
  await settle();
  assert.deepEqual(seen, [42]);
  assert.throws(() => track(media, { endpoint: 'x', streamId: 'launch', onCount: 5 }), /onCount/);
});
