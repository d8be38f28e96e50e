// Runs the browser tests (every *.test.mjs here, or those named on the command line) in Debian's
// chromium, driven by puppeteer-core: no browser is downloaded. Each test module exports
// `async function run(ctx)` and throws to fail. Needs a running local stack:
//   CHAT_URL=… WEB_URL=… DEMO_URL=… node dev/browser/run.mjs [widget.test.mjs …]
// (dev/test sources the stack's ready file first). Screenshots go to .local/test/screenshots/.

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import puppeteer from 'puppeteer-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set: start the local stack and source its ready file (see dev/test)`);
    process.exit(2);
  }
  return v.replace(/\/+$/, '');
}

// The real binary: /usr/bin/chromium is Debian's wrapper script, which adds nothing we need and
// prints a shm warning.
export function chromiumPath() {
  const found = [process.env.CHROMIUM, '/usr/lib/chromium/chromium', '/usr/bin/chromium'].find((p) => p && existsSync(p));
  if (!found) throw new Error('chromium not found: apt-get install chromium (dev/test does)');
  return found;
}

// A browser with a profile of its own, removed afterwards. Root (a container) needs --no-sandbox.
export async function launch() {
  const userDataDir = mkdtempSync(join(tmpdir(), 'switchboard-browser-'));
  const args = ['--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check'];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  try {
    const browser = await puppeteer.launch({ executablePath: chromiumPath(), headless: true, userDataDir, args });
    return { browser, close: async () => { try { await browser.close(); } finally { rmSync(userDataDir, { recursive: true, force: true }); } } };
  } catch (e) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw e;
  }
}

export function context() {
  const chatUrl = need('CHAT_URL'), webUrl = need('WEB_URL');
  const shots = join(ROOT, '.local', 'test', 'screenshots');
  return {
    chatUrl,
    webUrl,
    demoUrl: process.env.DEMO_URL?.replace(/\/+$/, ''),
    // A dev JWT from the web server's /dev/token (what the demo shop's login uses too).
    async token(sub, role = 'customer') {
      const res = await fetch(`${webUrl}/dev/token?sub=${encodeURIComponent(sub)}&role=${role}`);
      if (!res.ok) throw new Error(`/dev/token: ${res.status}`);
      return (await res.json()).token;
    },
    // The chat API as a test reads it, outside the browser: what was really stored.
    async api(method, path, { token, body } = {}) {
      const res = await fetch(chatUrl + path, {
        method, body: body && JSON.stringify(body),
        headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : null };
    },
    // screenshot(page, name) or screenshot(name, page): .local/test/screenshots/<name>.png
    async screenshot(page, name) {
      if (typeof page === 'string') [page, name] = [name, page];
      mkdirSync(shots, { recursive: true });
      const path = join(shots, `${name}.png`);
      await page.screenshot({ path });
      return path;
    },
    // axe-core on the page (open shadow roots included); fails on serious or critical findings.
    async axe(page, include) {
      // Evaluated over the DevTools protocol, which the page's CSP does not govern: a <script>
      // tag (addScriptTag) would be refused by script-src 'self', and turning CSP off for the
      // test would hide what it is there to catch.
      if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE_SOURCE);
      const results = await page.evaluate((include) => window.axe.run(include ? { include } : document, {
        resultTypes: ['violations'],
      }), include ?? null);
      const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      if (bad.length) {
        throw new Error('axe: ' + bad.map((v) => `${v.impact} ${v.id} (${v.help}) at ${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')}`).join('; '));
      }
      return results.violations; // moderate and minor ones, for the log
    },
  };
}

async function main() {
  const names = process.argv.slice(2);
  const files = (names.length ? names.map((n) => basename(n)) : readdirSync(HERE).filter((f) => f.endsWith('.test.mjs')).sort());
  const ctx = context();
  const { browser, close } = await launch();
  ctx.browser = browser;
  // A page whose CSP or script fails shows it only in its console: keep that in the test log.
  ctx.watch = (page, label) => {
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warn') console.log(`  [${label} console.${m.type()}] ${m.text()}`); });
    page.on('pageerror', (e) => console.log(`  [${label} page error] ${e.message}`));
  };
  // A page in a browser context of its own (its own localStorage and cookies), so tests do not
  // see each other's conversations; closed after the test.
  let open = [];
  ctx.newPage = async (label = 'page') => {
    const bc = await browser.createBrowserContext();
    open.push(bc);
    const page = await bc.newPage();
    await page.setViewport({ width: 1100, height: 800 });
    ctx.watch(page, label);
    return page;
  };
  let failed = 0;
  try {
    for (const file of files) {
      const mod = await import(pathToFileURL(join(HERE, file)).href);
      const tests = mod.tests ?? { [file.replace(/\.test\.mjs$/, '')]: mod.run };
      for (const [name, fn] of Object.entries(tests)) {
        const t0 = performance.now();
        try {
          await fn(ctx);
          console.log(`ok   ${file} ${name} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
        } catch (e) {
          failed++;
          console.log(`FAIL ${file} ${name} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n  ${e.stack || e}`);
        } finally {
          for (const bc of open) await bc.close().catch(() => {});
          open = [];
        }
      }
    }
  } finally {
    await close();
  }
  console.log(failed ? `${failed} browser test(s) failed` : 'browser tests passed');
  process.exitCode = failed ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
