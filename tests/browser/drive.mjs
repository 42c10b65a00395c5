// Drives headless Chromium (through playwright-core) for tests/browser.rs.
//
//   node tests/browser/drive.mjs '<json job>'
//
// The job: { "url": page to open, "watch": URL prefix whose requests are
// recorded, "screenshot": optional PNG path, "waitFor": "result" (await
// window.result, set by tests/browser/player.html) or "demo" (the demo
// gallery: every image loaded and every video's metadata read),
// "ignoreCertErrors": bool, "throttleKBps": optional download limit }.
//
// Prints one JSON line: { "result": ..., "requests": [{url, method, range,
// status, protocol}], "console": [...] }. Exits non-zero on failure.
//
// MEDIAGATE_TEST_CHROMIUM is the browser, MEDIAGATE_TEST_PLAYWRIGHT the
// playwright-core package directory.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const job = JSON.parse(process.argv[2]);
const pw = await import(pathToFileURL(join(process.env.MEDIAGATE_TEST_PLAYWRIGHT, 'index.mjs')).href);
const profile = mkdtempSync(join(tmpdir(), 'mediagate-chromium-'));

const args = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];
if (job.ignoreCertErrors) args.push('--ignore-certificate-errors');

let browser;
try {
  // launchPersistentContext takes the fresh profile directory as user data dir.
  const context = await pw.chromium.launchPersistentContext(profile, {
    executablePath: process.env.MEDIAGATE_TEST_CHROMIUM,
    headless: true,
    args,
    ignoreHTTPSErrors: !!job.ignoreCertErrors,
    viewport: { width: 1200, height: 900 },
    timeout: 30000,
  });
  browser = context;
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));

  // Every request to mediagate, with its Range header, status and protocol.
  const requests = new Map();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  if (job.throttleKBps) {
    // A slow link, so that a seek lands past what is buffered and the player
    // has to ask for a new byte range.
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 0, uploadThroughput: -1, downloadThroughput: job.throttleKBps * 1024,
    });
  }
  cdp.on('Network.requestWillBeSent', (e) => {
    if (!e.request.url.startsWith(job.watch)) return;
    const h = e.request.headers;
    requests.set(e.requestId, {
      url: e.request.url,
      method: e.request.method,
      range: h.Range ?? h.range ?? null,
      status: null,
      protocol: null,
      failed: null,
    });
  });
  cdp.on('Network.requestWillBeSentExtraInfo', (e) => {
    const r = requests.get(e.requestId);
    if (r && !r.range) r.range = e.headers.Range ?? e.headers.range ?? null;
  });
  cdp.on('Network.responseReceived', (e) => {
    const r = requests.get(e.requestId);
    if (r) {
      r.status = e.response.status;
      r.protocol = e.response.protocol ?? null;
    }
  });
  cdp.on('Network.loadingFailed', (e) => {
    const r = requests.get(e.requestId);
    if (r) r.failed = e.errorText + (e.corsErrorStatus ? ` (CORS: ${e.corsErrorStatus.corsError})` : '');
  });

  await page.goto(job.url, { waitUntil: 'load', timeout: 30000 });
  let result;
  if (job.waitFor === 'demo') {
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll('img[data-media]')];
      const vids = [...document.querySelectorAll('video[data-media]')];
      return imgs.length > 0 && imgs.every((i) => i.complete) && vids.every((v) => v.readyState >= 2);
    }, null, { timeout: 30000 });
    result = await page.evaluate(() => ({
      images: [...document.querySelectorAll('img[data-media]')].map((i) => ({ src: i.getAttribute('src'), width: i.naturalWidth })),
      videos: [...document.querySelectorAll('video[data-media]')].map((v) => ({ src: v.getAttribute('src'), duration: v.duration, width: v.videoWidth })),
    }));
  } else {
    result = await page.evaluate(() => window.result);
  }
  if (job.screenshot) await page.screenshot({ path: job.screenshot, fullPage: true });
  // Let the last response events arrive.
  await new Promise((r) => setTimeout(r, 200));
  process.stdout.write(JSON.stringify({ result, requests: [...requests.values()], console: consoleLines }) + '\n');
} catch (e) {
  process.stderr.write(`drive.mjs: ${e?.stack ?? e}\n`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
