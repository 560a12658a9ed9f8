// Unit tests of the player client with a fake media element, clock, network and page.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { track } from '../livecount.js';
import { manualClock } from './clock.mjs';

/** A fake world: a manual clock with timers, a network that can be cut, a page. */
function world({ online = true, storage = new Map(), start = 1_700_000_000_000 } = {}) {
  const clock = manualClock(start);
  const sent = []; // every request body that reached the server, parsed
  const beacons = [];
  const net = { online, attempts: 0 };
  const w = {
    media: Object.assign(new EventTarget(), { paused: true, readyState: 0 }),
    window: new EventTarget(),
    document: Object.assign(new EventTarget(), { visibilityState: 'visible' }),
    sent,
    beacons,
    net,
    get now() {
      return clock.now();
    },
    options: {
      endpoint: 'http://localhost:8080/events',
      streamId: 'launch',
      sessionId: 'viewer-1',
      now: clock.now,
      storage: { getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => storage.set(k, v) },
      random: () => 1, // no jitter: retries wait exactly their delay
      setTimeout: clock.setTimeout,
      clearTimeout: clock.clearTimeout,
      fetch: async (url, init) => {
        net.attempts += 1;
        assert.equal(url, 'http://localhost:8080/events');
        assert.equal(init.method, 'POST');
        assert.equal(init.headers['content-type'], 'text/plain');
        if (!net.online) throw new TypeError('Failed to fetch');
        sent.push(JSON.parse(init.body));
        return { ok: true, status: 200 };
      },
      sendBeacon: (url, blob) => {
        beacons.push(blob);
        return true;
      },
    },
    /** Moves the clock, firing due timers in order (and letting sends settle). */
    advance: clock.advance,
    play() {
      w.media.paused = false;
      w.media.dispatchEvent(new Event('playing'));
    },
    pause() {
      w.media.paused = true;
      w.media.dispatchEvent(new Event('pause'));
    },
    types: () => sent.map((e) => e.type),
  };
  w.options.window = w.window;
  w.options.document = w.document;
  return w;
}

test('start on the first playing, then a heartbeat every 5 s while playing', async () => {
  const w = world();
  track(w.media, w.options);
  await w.advance(20_000);
  assert.deepEqual(w.sent, [], 'nothing before playback starts');
  w.play();
  await w.advance(16_000);
  assert.deepEqual(w.types(), ['start', 'heartbeat', 'heartbeat', 'heartbeat']);
  for (const [i, e] of w.sent.entries()) {
    assert.equal(e.seq, w.sent[0].seq + i, 'seq increases by one with every event');
    assert.equal(e.streamId, 'launch');
    assert.equal(e.sessionId, 'viewer-1');
  }
  assert.equal(w.sent[1].ts - w.sent[0].ts, 5000);
});

test('pause sends pause and stops heartbeats; playing again sends a heartbeat at once', async () => {
  const w = world();
  track(w.media, w.options);
  w.play();
  await w.advance(6_000);
  w.pause();
  await w.advance(30_000);
  assert.deepEqual(w.types(), ['start', 'heartbeat', 'pause']);
  w.play();
  await w.advance(5_000);
  assert.deepEqual(w.types(), ['start', 'heartbeat', 'pause', 'heartbeat', 'heartbeat']);
});

test('ended sends stop; leaving the page sends stop by beacon', async () => {
  const w = world();
  track(w.media, w.options);
  w.play();
  await w.advance(1_000);
  w.media.dispatchEvent(new Event('ended'));
  await w.advance(10_000);
  assert.deepEqual(w.types(), ['start', 'stop']);

  const v = world();
  track(v.media, v.options);
  v.play();
  await v.advance(1_000);
  v.window.dispatchEvent(new Event('pagehide'));
  await v.advance(10_000);
  assert.deepEqual(v.types(), ['start'], 'no fetch on the way out');
  assert.equal(v.beacons.length, 1);
  assert.equal(v.beacons[0].type, 'text/plain');
  const stop = JSON.parse(await v.beacons[0].text());
  assert.equal(stop.type, 'stop');
  assert.equal(stop.seq, v.sent[0].seq + 1);
});

test('a page that never played sends nothing when it goes away', async () => {
  const w = world();
  track(w.media, w.options);
  w.window.dispatchEvent(new Event('pagehide'));
  await w.advance(10_000);
  assert.deepEqual(w.sent, []);
  assert.equal(w.beacons.length, 0);
});

test('network loss: retries with backoff, only the newest event, no burst on reconnect', async () => {
  const w = world();
  track(w.media, w.options);
  w.play();
  await w.advance(1_000);
  w.net.online = false;
  await w.advance(60_000); // twelve heartbeats fall due while offline
  const offlineAttempts = w.net.attempts - 1;
  assert.ok(offlineAttempts <= 8, `backoff, not one try per heartbeat (${offlineAttempts})`);
  w.net.online = true;
  w.window.dispatchEvent(new Event('online'));
  await w.advance(0);
  assert.deepEqual(w.types(), ['start', 'heartbeat'], 'one event after reconnecting');
  assert.ok(w.sent[1].seq - w.sent[0].seq >= 12, 'the newest heartbeat, not a stale one');
  await w.advance(5_000);
  assert.deepEqual(w.types(), ['start', 'heartbeat', 'heartbeat'], 'then the usual rhythm');
});

test('backoff doubles up to its limit', async () => {
  const w = world();
  w.net.online = false;
  track(w.media, { ...w.options, retryMinMs: 1000, retryMaxMs: 8000 });
  w.play();
  await w.advance(0);
  const times = [];
  let attempts = w.net.attempts;
  for (let s = 0; s < 40; s += 1) {
    await w.advance(1000);
    if (w.net.attempts > attempts) {
      times.push(s + 1);
      attempts = w.net.attempts;
    }
  }
  // Heartbeats replace the pending event but never start a send while a retry waits.
  assert.deepEqual(times.slice(0, 5), [1, 3, 7, 15, 23]);
});

test('a tab shown again sends an overdue heartbeat at once', async () => {
  const w = world();
  const slow = { ...w.options, setTimeout: (f, ms) => w.options.setTimeout(f, ms + 50_000) };
  track(w.media, slow); // timers of a hidden tab, throttled
  w.play();
  await w.advance(10_000);
  assert.deepEqual(w.types(), ['start']);
  w.document.dispatchEvent(new Event('visibilitychange'));
  await w.advance(0);
  assert.deepEqual(w.types(), ['start', 'heartbeat']);
});

test('options are checked', () => {
  const w = world();
  assert.throws(() => track(w.media, { ...w.options, endpoint: '' }), /endpoint is required/);
  assert.throws(() => track(w.media, { ...w.options, streamId: 'has#hash' }), /streamId/);
  assert.throws(() => track(null, w.options), /HTMLMediaElement/);
  assert.throws(() => track(w.media, { ...w.options, intervalMs: 10 }), /intervalMs/);
});

test('session ids come from crypto.randomUUID and tokens are sent', async () => {
  const w = world();
  const { sessionId: _, ...options } = w.options;
  const tracker = track(w.media, { ...options, token: 'v1.1.abc' });
  assert.match(tracker.sessionId, /^[0-9a-f-]{36}$/);
  w.play();
  await w.advance(0);
  assert.equal(w.sent[0].token, 'v1.1.abc');
  assert.equal(w.sent[0].sessionId, tracker.sessionId);
});

test('a reloaded player continues past the last seq of its session, whatever the clock says', async () => {
  const storage = new Map();
  const first = world({ storage });
  track(first.media, first.options);
  first.play();
  await first.advance(60_000);
  const last = first.sent.at(-1).seq;
  // The page reloads with the same sessionId; the device clock went back an hour meanwhile.
  const reloaded = world({ storage, start: first.now - 3_600_000 });
  track(reloaded.media, reloaded.options);
  reloaded.play();
  await reloaded.advance(0);
  assert.deepEqual(reloaded.types(), ['start']);
  assert.ok(reloaded.sent[0].seq > last, `${reloaded.sent[0].seq} > ${last}`);
});

test('another device with the same sessionId starts past it by its clock', async () => {
  const first = world();
  track(first.media, first.options);
  first.play();
  await first.advance(60_000);
  const other = world({ start: first.now + 1_000 });
  track(other.media, other.options);
  other.play();
  await other.advance(0);
  assert.ok(other.sent[0].seq > first.sent.at(-1).seq);
});

test('no storage (private mode) still works', async () => {
  const w = world();
  w.options.storage = null;
  track(w.media, w.options);
  w.play();
  await w.advance(5_000);
  assert.deepEqual(w.types(), ['start', 'heartbeat']);
  assert.equal(w.sent[1].seq, w.sent[0].seq + 1);
});
