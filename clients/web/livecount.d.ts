/** Options of {@link track}. */
export interface TrackOptions {
  /** The edge URL: the deployed `…/events` (the EdgeUrl output), or `http://localhost:8080/events` with `livecount dev`. */
  endpoint: string;
  /** The live stream watched: 1-128 characters of `A-Z a-z 0-9 . _ : -`. */
  streamId: string;
  /** A signed-session token from your backend, when the deployment requires one. */
  token?: string;
  /** Called with the stream's viewers each time the edge answers an event (every heartbeat). */
  onCount?: (viewers: number, info: { asOf?: number }) => void;
  /** This playback's id; a fresh `crypto.randomUUID()` by default. */
  sessionId?: string;
  /** Milliseconds between heartbeats while playing (default 5000, at least 1000). */
  intervalMs?: number;
  /** First and longest wait before retrying a failed send (defaults 1000 and 30000 ms). */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Replacements for the browser's, for tests. */
  fetch?: typeof fetch;
  sendBeacon?: (url: string, data: Blob) => boolean;
  setTimeout?: (callback: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
  now?: () => number;
  random?: () => number;
  randomUUID?: () => string;
  /** Where the last `seq` of each session is kept across reloads (default `localStorage`; `null`: nowhere). */
  storage?: { getItem(key: string): string | null; setItem(key: string, value: string): void } | null;
  window?: EventTarget;
  document?: EventTarget & { visibilityState?: string };
}

/** A media element being reported. */
export interface Tracker {
  readonly sessionId: string;
  /** The `seq` the next event will carry. */
  readonly seq: number;
  /** Stops listening; reports `stop` if the viewer was watching. */
  detach(): void;
}

/** Starts reporting `media`'s playback to livecount. */
export function track(media: HTMLMediaElement, options: TrackOptions): Tracker;

/** Options of {@link watch}. */
export interface WatchOptions {
  /** The badge's base URL: the BadgeUrl output (a CloudFront domain), or `http://localhost:8080` with `livecount dev`. */
  endpoint: string;
  /** Milliseconds between polls (default 10000, at least 1000; never below the server's max-age), jittered ±20 %. */
  intervalMs?: number;
  /** Longest wait after errors (default 60000 ms); waits double from intervalMs. */
  retryMaxMs?: number;
  /** Replacements for the browser's, for tests. */
  fetch?: typeof fetch;
  setTimeout?: (callback: () => void, ms: number) => unknown;
  clearTimeout?: (handle: unknown) => void;
  random?: () => number;
  document?: EventTarget & { visibilityState?: string };
}

/** A stream being watched. */
export interface Watcher {
  /** Stops polling. */
  stop(): void;
}

/** Calls `onCount` with `streamId`'s viewers each time they change, polling the badge. */
export function watch(
  streamId: string,
  onCount: (viewers: number, info: { asOf: number }) => void,
  options: WatchOptions,
): Watcher;

/** Defines the `<livecount-viewers stream endpoint interval>` element (done on import as `livecount-viewers`). */
export function defineViewersElement(name?: string, registry?: CustomElementRegistry): void;
