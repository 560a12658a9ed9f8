// livecount web client: reports whether one viewer is watching a live stream, and shows the
// audience how many are.
//
//   import { track, watch } from './livecount.js';
//   track(document.querySelector('video'), {
//     endpoint: 'https://abc123.lambda-url.eu-west-1.on.aws/events', // the EdgeUrl output
//     streamId: 'launch-keynote',
//     token, // from your backend, with the playback URL
//     onCount: (viewers) => badge.textContent = viewers, // each answer carries the count
//   });
//   watch('launch-keynote', (viewers) => …, { endpoint: 'https://d111.cloudfront.net' }); // BadgeUrl
//   <livecount-viewers stream="launch-keynote" endpoint="https://d111.cloudfront.net"></livecount-viewers>
//
// It sends `start` on the first `playing`, a `heartbeat` every 5 s while playing, `pause` on
// pause, and `stop` on `ended` or when the page goes away (`pagehide`, by `navigator.sendBeacon`).
// Every event carries `seq`, which the server uses to order the session's events, so a device
// clock that jumps cannot hide the viewer. `seq` keeps increasing across reloads and players of
// one `sessionId`: a tracker starts at the clock's milliseconds, or past the last `seq` this
// browser sent for the session (kept in localStorage) if that is higher, and adds one per event;
// so a reloaded player is counted at once, and an old event replayed stays older than a `stop`.
// Failed sends are retried with exponential backoff;
// only the newest event is ever retried (the server needs no other), so reconnecting never sends
// a burst. The edge answers each event with the stream's viewers, given to `onCount`.
//
// `watch` (and the <livecount-viewers> element built on it) polls the badge for pages that do not
// play: with jitter, never more often than the server's Cache-Control allows, not while the tab is
// hidden (at once when it is shown again), with a conditional request (ETag, 304), backing off on
// errors. No dependencies; works in every current browser.

const DEFAULTS = {
  intervalMs: 5000,
  retryMinMs: 1000,
  retryMaxMs: 30000,
};

const WATCH_DEFAULTS = {
  intervalMs: 10000,
  retryMaxMs: 60000,
};

const STREAM_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Starts reporting `media`'s playback. Returns a tracker; `tracker.detach()` stops listening
 * (and reports `stop` if the viewer was counted).
 * @param {HTMLMediaElement} media
 * @param {import('./livecount').TrackOptions} options
 * @returns {import('./livecount').Tracker}
 */
export function track(media, options) {
  const o = { ...DEFAULTS, ...options };
  if (!media || typeof media.addEventListener !== 'function') {
    throw new TypeError('livecount: track(media, options) needs an HTMLMediaElement');
  }
  if (typeof o.endpoint !== 'string' || o.endpoint === '') {
    throw new TypeError('livecount: options.endpoint is required (the ingest URL ending in /events)');
  }
  if (typeof o.streamId !== 'string' || !STREAM_ID.test(o.streamId)) {
    throw new TypeError('livecount: options.streamId must be 1-128 characters of A-Z a-z 0-9 . _ : -');
  }
  if (o.onCount !== undefined && typeof o.onCount !== 'function') {
    throw new TypeError('livecount: options.onCount must be a function');
  }
  if (!(o.intervalMs >= 1000)) {
    throw new TypeError('livecount: options.intervalMs must be at least 1000');
  }
  const env = environment(o);
  const sessionId = o.sessionId ?? env.randomUUID();
  const seqKey = `livecount.seq.${o.streamId}.${sessionId}`;
  let seq = Math.max(Math.floor(env.now()), lastSeq(env.storage, seqKey) + 1);
  let started = false; // a watching event was sent: the server may count this viewer
  let watching = false;
  let heartbeatTimer = null;
  let nextHeartbeatAt = 0;
  let pending = null; // the newest event not yet accepted by the server
  let inFlight = false;
  let retryTimer = null;
  let retryDelay = o.retryMinMs;
  let detached = false;

  const event = (type) => {
    const e = { streamId: o.streamId, sessionId, type, ts: env.now(), seq: seq++ };
    if (o.token) e.token = o.token;
    remember(env.storage, seqKey, e.seq);
    return e;
  };

  // Sends the newest event; an older one still waiting is dropped (the server keeps the newest).
  const send = (e) => {
    pending = e;
    if (!inFlight && retryTimer === null) flush();
  };

  const flush = async () => {
    if (pending === null || inFlight) return;
    const e = pending;
    inFlight = true;
    let ok = false;
    try {
      const response = await env.fetch(o.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify(e),
        keepalive: true,
        credentials: 'omit',
      });
      ok = response.ok || (response.status >= 400 && response.status < 500 && response.status !== 429);
      if (response.ok && o.onCount) counted(response);
    } catch {
      ok = false;
    }
    inFlight = false;
    if (ok) {
      if (pending === e) pending = null;
      retryDelay = o.retryMinMs;
      if (pending !== null) flush();
      return;
    }
    // Network loss or a server error: retry later, with jitter, only the newest event.
    const delay = retryDelay * (0.5 + env.random() / 2);
    retryDelay = Math.min(retryDelay * 2, o.retryMaxMs);
    retryTimer = env.setTimeout(() => {
      retryTimer = null;
      flush();
    }, delay);
  };

  // The edge's answer: {"viewers": n, "asOf": seconds}; anything else is ignored.
  const counted = async (response) => {
    try {
      const answer = await response.json();
      if (Number.isSafeInteger(answer?.viewers) && !detached) o.onCount(answer.viewers, { asOf: answer.asOf });
    } catch {
      // not JSON (an older endpoint): the count is simply not shown
    }
  };

  const retryNow = () => {
    if (retryTimer !== null) {
      env.clearTimeout(retryTimer);
      retryTimer = null;
      flush();
    }
  };

  const scheduleHeartbeat = () => {
    env.clearTimeout(heartbeatTimer);
    const wait = Math.max(0, nextHeartbeatAt - env.now());
    heartbeatTimer = env.setTimeout(beat, wait);
  };

  const beat = () => {
    if (!watching || detached) return;
    send(event('heartbeat'));
    nextHeartbeatAt = env.now() + o.intervalMs;
    scheduleHeartbeat();
  };

  const onPlaying = () => {
    if (detached || watching) return;
    watching = true;
    send(event(started ? 'heartbeat' : 'start'));
    started = true;
    nextHeartbeatAt = env.now() + o.intervalMs;
    scheduleHeartbeat();
  };

  const onPause = () => {
    if (detached || !watching) return;
    watching = false;
    env.clearTimeout(heartbeatTimer);
    send(event('pause'));
  };

  const onEnded = () => {
    if (detached || !started) return;
    watching = false;
    env.clearTimeout(heartbeatTimer);
    send(event('stop'));
  };

  // A hidden tab's timers may be throttled: when it is shown again, an overdue heartbeat goes now.
  const onVisibility = () => {
    if (env.document?.visibilityState === 'visible' && watching && env.now() >= nextHeartbeatAt) beat();
  };

  // The page is going away: `stop` by beacon, which the browser delivers after the page is gone.
  const onPageHide = () => {
    if (!started || detached) return;
    watching = false;
    env.clearTimeout(heartbeatTimer);
    const body = JSON.stringify(event('stop'));
    pending = null;
    const queued = env.sendBeacon?.(o.endpoint, new Blob([body], { type: 'text/plain' }));
    if (!queued) {
      env.fetch(o.endpoint, { method: 'POST', headers: { 'content-type': 'text/plain' }, body, keepalive: true, credentials: 'omit' }).catch(() => {});
    }
  };

  const listeners = [
    [media, 'playing', onPlaying],
    [media, 'pause', onPause],
    [media, 'ended', onEnded],
    [env.window, 'pagehide', onPageHide],
    [env.window, 'online', retryNow],
    [env.document, 'visibilitychange', onVisibility],
  ].filter(([target]) => target && typeof target.addEventListener === 'function');
  for (const [target, name, listener] of listeners) target.addEventListener(name, listener);
  if (!media.paused && media.readyState > 2) onPlaying();

  return {
    sessionId,
    get seq() {
      return seq;
    },
    detach() {
      if (started && watching) onEnded();
      for (const [target, name, listener] of listeners) target.removeEventListener(name, listener);
      env.clearTimeout(heartbeatTimer);
      detached = true;
    },
  };
}

/**
 * Calls `onCount(viewers, {asOf})` with `streamId`'s viewers as the badge at `options.endpoint`
 * (the BadgeUrl output, or `livecount dev`'s address) serves them, each time they change.
 * Returns a watcher; `watcher.stop()` ends it.
 * @param {string} streamId
 * @param {(viewers: number, info: {asOf: number}) => void} onCount
 * @param {import('./livecount').WatchOptions} options
 * @returns {import('./livecount').Watcher}
 */
export function watch(streamId, onCount, options) {
  const o = { ...WATCH_DEFAULTS, ...options };
  if (typeof streamId !== 'string' || !STREAM_ID.test(streamId)) {
    throw new TypeError('livecount: watch(streamId, …): streamId must be 1-128 characters of A-Z a-z 0-9 . _ : -');
  }
  if (typeof onCount !== 'function') throw new TypeError('livecount: watch(streamId, onCount, …) needs a function');
  if (typeof o.endpoint !== 'string' || o.endpoint === '') {
    throw new TypeError('livecount: options.endpoint is required (the badge URL, the BadgeUrl output)');
  }
  if (!(o.intervalMs >= 1000)) throw new TypeError('livecount: options.intervalMs must be at least 1000');
  const env = environment(o);
  const url = `${o.endpoint.replace(/\/+$/, '')}/api/streams/${encodeURIComponent(streamId)}/viewers`;
  let etag = null;
  let last = null;
  let timer = null;
  let failures = 0;
  let stopped = false;
  let polling = false;

  const hidden = () => env.document?.visibilityState === 'hidden';
  const jitter = (ms) => ms * (0.8 + 0.4 * env.random());
  const schedule = (ms) => {
    env.clearTimeout(timer);
    timer = stopped || hidden() ? null : env.setTimeout(poll, ms);
  };

  // Seconds the server lets the answer be kept (`max-age`), or 0.
  const maxAge = (response) => {
    const match = /max-age=(\d+)/.exec(response.headers?.get?.('cache-control') ?? '');
    return match ? Number(match[1]) : 0;
  };

  const poll = async () => {
    timer = null;
    if (stopped || polling || hidden()) return;
    polling = true;
    let next;
    try {
      const response = await env.fetch(url, {
        headers: etag ? { 'if-none-match': etag } : {},
        credentials: 'omit',
      });
      if (response.status === 304 || response.ok) {
        failures = 0;
        if (response.ok) {
          const answer = await response.json();
          etag = response.headers?.get?.('etag') ?? null;
          if (Number.isSafeInteger(answer?.viewers) && answer.viewers !== last && !stopped) {
            last = answer.viewers;
            onCount(answer.viewers, { asOf: answer.asOf });
          }
        }
        next = jitter(Math.max(o.intervalMs, 1000 * maxAge(response)));
      } else {
        throw new Error(`HTTP ${response.status}`);
      }
    } catch {
      failures += 1;
      next = jitter(Math.min(o.intervalMs * 2 ** failures, o.retryMaxMs));
    }
    polling = false;
    schedule(next);
  };

  const onVisibility = () => {
    if (!hidden() && timer === null && !polling) poll();
  };
  env.document?.addEventListener?.('visibilitychange', onVisibility);
  poll();
  return {
    stop() {
      stopped = true;
      env.clearTimeout(timer);
      env.document?.removeEventListener?.('visibilitychange', onVisibility);
    },
  };
}

/**
 * Defines `<livecount-viewers stream="…" endpoint="…" interval="10">` (seconds), which shows the
 * stream's viewers as its text (and `data-viewers`), watching while it is in the page. Defined on
 * import where custom elements exist; call again with another name if that one is taken.
 */
export function defineViewersElement(name = 'livecount-viewers', registry = globalThis.customElements) {
  if (!registry || registry.get(name)) return;
  class LivecountViewers extends globalThis.HTMLElement {
    connectedCallback() {
      const stream = this.getAttribute('stream');
      const endpoint = this.getAttribute('endpoint') ?? globalThis.location?.origin;
      const interval = Number(this.getAttribute('interval') ?? 10);
      const format = new Intl.NumberFormat(this.getAttribute('lang') ?? undefined);
      try {
        this.watcher = watch(
          stream,
          (viewers) => {
            this.dataset.viewers = String(viewers);
            this.textContent = format.format(viewers);
          },
          { endpoint, intervalMs: interval * 1000 },
        );
      } catch (e) {
        console.error(e.message);
      }
    }
    disconnectedCallback() {
      this.watcher?.stop();
      this.watcher = undefined;
    }
  }
  registry.define(name, LivecountViewers);
}

defineViewersElement();

/** The last `seq` this browser sent for a session (-1 if none, or if storage is unavailable). */
function lastSeq(storage, key) {
  try {
    const value = Number(storage?.getItem(key));
    return Number.isSafeInteger(value) && value >= 0 ? value : -1;
  } catch {
    return -1;
  }
}

function remember(storage, key, seq) {
  try {
    storage?.setItem(key, String(seq));
  } catch {
    // storage full or refused (private mode): the clock still orders the next tracker's events
  }
}

/** What the client takes from its surroundings; tests pass their own. */
function environment(o) {
  const g = globalThis;
  return {
    fetch: o.fetch ?? ((...args) => g.fetch(...args)),
    sendBeacon: o.sendBeacon ?? (g.navigator?.sendBeacon ? (url, data) => g.navigator.sendBeacon(url, data) : undefined),
    setTimeout: o.setTimeout ?? ((f, ms) => g.setTimeout(f, ms)),
    clearTimeout: o.clearTimeout ?? ((t) => g.clearTimeout(t)),
    now: o.now ?? (() => Date.now()),
    random: o.random ?? Math.random,
    randomUUID: o.randomUUID ?? (() => g.crypto.randomUUID()),
    storage: 'storage' in o ? o.storage : safeLocalStorage(g),
    window: o.window ?? g.window,
    document: o.document ?? g.document,
  };
}

function safeLocalStorage(g) {
  try {
    return g.localStorage ?? null;
  } catch {
    return null; // a sandboxed frame may refuse access
  }
}
