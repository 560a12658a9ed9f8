// livecount player client: reports whether one viewer is watching a live stream.
//
//   import { track } from './livecount.js';
//   track(document.querySelector('video'), {
//     endpoint: 'https://abc123.execute-api.eu-west-1.amazonaws.com/events',
//     streamId: 'launch-keynote',
//   });
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
// a burst. No dependencies; works in every current browser.

const DEFAULTS = {
  intervalMs: 5000,
  retryMinMs: 1000,
  retryMaxMs: 30000,
};

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
  if (typeof o.streamId !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(o.streamId)) {
    throw new TypeError('livecount: options.streamId must be 1-128 characters of A-Z a-z 0-9 . _ : -');
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
