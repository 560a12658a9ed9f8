// End to end in a real browser: headless Chromium opens the player page that `livecount dev`
// serves, whose <video> plays media the page makes itself and is instrumented by the web client;
// the count is read back from the same `livecount dev`.
//
//   node test/e2e/player.e2e.mjs http://127.0.0.1:8080
//
// Exits non-zero, naming the step, when a count is not what it should be within its deadline.
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const base = process.argv[2] ?? 'http://127.0.0.1:8080';
const stream = `e2e-${process.pid}`;
// A heartbeat every 5 s must show the viewer within one interval and a bit.
const FIRST_COUNT_MS = 6000;
// pause, stop and the beacon count at once: long before a silent viewer's window (15 s) runs out.
const AT_ONCE_MS = 3000;
// The badge polls every second (its interval attribute) and may be a second old.
const BADGE_MS = 4000;

async function viewers() {
  const response = await fetch(`${base}/api/streams/${stream}`);
  assert.equal(response.status, 200, `GET /api/streams/${stream}`);
  return (await response.json()).viewers;
}

/** Waits until the count is `expected`; returns how long it took, or fails naming `step`. */
async function countBecomes(expected, deadlineMs, step) {
  const start = Date.now();
  let seen;
  while (Date.now() - start <= deadlineMs) {
    seen = await viewers();
    if (seen === expected) return Date.now() - start;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${step}: expected ${expected} viewers within ${deadlineMs} ms, still ${seen}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
const report = {};
try {
  const context = await browser.newContext();
  const open = async () => {
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
    await page.goto(`${base}/player?stream=${stream}`);
    await page.waitForFunction(() => window.livecount?.video?.readyState >= 2);
    await page.evaluate(() => window.livecount.video.play());
    return page;
  };

  const page = await open();
  report.firstCountMs = await countBecomes(1, FIRST_COUNT_MS, 'playing');
  // The audience's view: <livecount-viewers> polls the badge (max-age 1 s) and shows the count.
  const start = Date.now();
  await page
    .waitForFunction(() => window.livecount.badge.dataset.viewers === '1', null, { timeout: BADGE_MS })
    .catch(() => assert.fail(`<livecount-viewers> did not show 1 within ${BADGE_MS} ms`));
  report.badgeMs = Date.now() - start;
  await page.evaluate(() => window.livecount.video.pause());
  report.pauseMs = await countBecomes(0, AT_ONCE_MS, 'pause()');
  await page.evaluate(() => window.livecount.video.play());
  report.playAgainMs = await countBecomes(1, AT_ONCE_MS, 'play() again');
  await page.close();
  report.closeMs = await countBecomes(0, AT_ONCE_MS, 'closing the page (beacon)');

  const pages = await Promise.all([open(), open(), open()]);
  report.threePagesMs = await countBecomes(3, FIRST_COUNT_MS, 'three pages');
  for (const p of pages) await p.close();
  report.threeClosedMs = await countBecomes(0, AT_ONCE_MS, 'three pages closed');
  console.log(`player e2e passed: ${JSON.stringify(report)}`);
} finally {
  await browser.close();
}
