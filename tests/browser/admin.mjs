// Drives mediagate's admin page in headless Chromium (through playwright-core)
// for tests/admin_page.rs, as a person would: types, selects, presses
// buttons by their text, and reads what the page shows.
//
//   node tests/browser/admin.mjs '<json job>'
//
// The job: { "url": the page, "viewport": {width, height} (default 1280x800),
//   "failureScreenshot": PNG path written when a step fails,
//   "steps": [ one of
//     {"fill": selector, "value": text}          type into an input (replacing its text)
//     {"select": selector, "value": option}      choose an option of a <select>
//     {"press": button text, "in": selector}     press the button whose accessible name is exactly that text
//     {"clickText": text, "in": selector}        click the element showing exactly that text
//     {"waitText": text, "in": selector}         wait until the element's visible text contains it
//     {"waitNoText": text, "in": selector}       wait until it does not
//     {"read": selector, "as": name}             record the element's visible text
//     {"readValue": selector, "as": name}        record an input's current value
//     {"readAttr": selector, "attr": a, "as": n} record an attribute
//     {"unlabelled": selector, "as": name}       record the form controls in it that have no label
//     {"screenshot": [paths]}                    a full-page PNG to each path
//   ] }.
// Every wait gives up after "timeoutMs" (default 30000). A `confirm()` is
// accepted and its message recorded.
//
// Prints one JSON line: { "reads": {name: text}, "dialogs": [...],
// "console": [...], "done": steps done }. On failure, exits non-zero after
// printing the failed step and the page's visible text.
//
// MEDIAGATE_TEST_CHROMIUM is the browser, MEDIAGATE_TEST_PLAYWRIGHT the
// playwright-core package directory.

import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

const job = JSON.parse(process.argv[2]);
const timeout = job.timeoutMs ?? 30000;
const pw = await import(pathToFileURL(join(process.env.MEDIAGATE_TEST_PLAYWRIGHT, 'index.mjs')).href);
const profile = mkdtempSync(join(tmpdir(), 'mediagate-chromium-'));

const reads = {};
const dialogs = [];
const consoleLines = [];
let done = 0;
let context;
let page;

async function visibleText(selector) {
  return page.locator(selector).first().innerText({ timeout });
}

async function waitText(selector, text, present) {
  await page.waitForFunction(
    ([sel, t, want]) => {
      const node = document.querySelector(sel);
      const shown = node ? node.innerText : '';
      return shown.includes(t) === want;
    },
    [selector, text, present],
    { timeout, polling: 100 },
  );
}

async function run(step) {
  if ('fill' in step) await page.locator(step.fill).fill(step.value, { timeout });
  else if ('select' in step) await page.locator(step.select).selectOption(step.value, { timeout });
  else if ('press' in step) {
    await page.locator(step.in ?? 'body').getByRole('button', { name: step.press, exact: true }).click({ timeout });
  } else if ('clickText' in step) {
    await page.locator(step.in ?? 'body').getByText(step.clickText, { exact: true }).first().click({ timeout });
  } else if ('waitText' in step) await waitText(step.in ?? 'body', step.waitText, true);
  else if ('waitNoText' in step) await waitText(step.in ?? 'body', step.waitNoText, false);
  else if ('read' in step) reads[step.as] = await visibleText(step.read);
  else if ('readValue' in step) reads[step.as] = await page.locator(step.readValue).first().inputValue({ timeout });
  else if ('unlabelled' in step) {
    // Form controls a screen reader would announce without a name.
    reads[step.as] = await page.locator(step.unlabelled).evaluate((root) =>
      [...root.querySelectorAll('input, select, textarea')]
        .filter((c) => c.type !== 'hidden' && c.labels.length === 0 && !c.getAttribute('aria-label'))
        .map((c) => c.name || c.id || c.outerHTML.slice(0, 60)).join(' '));
  } else if ('readAttr' in step) reads[step.as] = await page.locator(step.readAttr).first().getAttribute(step.attr, { timeout });
  else if ('screenshot' in step) {
    const [first, ...more] = step.screenshot;
    mkdirSync(dirname(first), { recursive: true });
    await page.screenshot({ path: first, fullPage: true });
    for (const p of more) {
      mkdirSync(dirname(p), { recursive: true });
      copyFileSync(first, p);
    }
  } else throw new Error(`unknown step ${JSON.stringify(step)}`);
}

try {
  context = await pw.chromium.launchPersistentContext(profile, {
    executablePath: process.env.MEDIAGATE_TEST_CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
    viewport: job.viewport ?? { width: 1280, height: 800 },
    locale: 'en-GB',
    timezoneId: 'UTC',
    timeout,
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  page.on('dialog', async (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    await d.accept();
  });
  await page.goto(job.url, { waitUntil: 'load', timeout });
  for (const step of job.steps) {
    try {
      await run(step);
    } catch (e) {
      let shown = '';
      try { shown = await page.locator('body').innerText({ timeout: 2000 }); } catch { /* page gone */ }
      if (job.failureScreenshot) {
        mkdirSync(dirname(job.failureScreenshot), { recursive: true });
        await page.screenshot({ path: job.failureScreenshot, fullPage: true }).catch(() => {});
      }
      throw new Error(`step ${done + 1} ${JSON.stringify(step)} failed: ${e.message}\n--- the page shows:\n${shown}\n--- console:\n${consoleLines.join('\n')}`);
    }
    done += 1;
  }
  process.stdout.write(JSON.stringify({ reads, dialogs, console: consoleLines, done }) + '\n');
} catch (e) {
  process.stderr.write(`admin.mjs: ${e?.stack ?? e}\n`);
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
