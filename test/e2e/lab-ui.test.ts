/**
 * The lab page (issue 17, part 3) in a real browser, as root: a routed vxlan lab of 2 hosts,
 * `twill lab ui --port 0` serving it on 127.0.0.1, Debian's chromium headless loading it. The
 * test waits for the picture and the agents' live states, picks two pods on different hosts,
 * asks for a trace and checks every drawn hop. It takes a screenshot every run; with
 * TWILL_LAB_UI_SCREENSHOT=docs/lab-ui.png it replaces the one the README shows.
 * Chromium may load nothing but the page's own origin: every other request is refused and
 * counted, every host name but 127.0.0.1 resolves to nothing, and background traffic is off.
 * afterAll closes the browser, stops the server and runs `lab down`, also after a failure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, CLI, isRoot, labNamespaces, twill } from '../support/lab.js';

const NAME = 't17w';
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = process.env.TWILL_LAB_UI_SCREENSHOT ?? join(tmpdir(), 'twill-lab-ui.png');
const TRACE_TIMEOUT_MS = 60_000;
// Nothing in the background: no updates, no metrics, no safe-browsing lists, no DNS but loopback.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-default-apps',
  '--disable-domain-reliability',
  '--disable-sync',
  '--disable-breakpad',
  '--metrics-recording-only',
  '--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
];

/** `twill lab ui --port 0` and the URL it prints once it listens. */
async function startUi(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, 'lab', 'ui', '--name', NAME, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`lab ui printed no URL in 20 s: ${output}`)), 20_000);
    const look = (b: Buffer): void => {
      output += b.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    };
    child.stdout.on('data', look);
    child.stderr.on('data', look);
    child.once('exit', (code) => reject(new Error(`lab ui exited (${code}): ${output}`)));
  });
  return { child, url };
}

async function stopUi(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

describe.skipIf(!isRoot())('twill lab ui in a real browser', () => {
  let ui: { child: ChildProcess; url: string } | null = null;
  let browser: Browser | null = null;
  let page: Page;
  const refused: string[] = [];

  beforeAll(async () => {
    assertBuilt();
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium (scripts/setup.sh does)`).toBe(true);
    await twill(['lab', 'down', '--name', NAME]); // leftovers of an interrupted run
    const up = await twill(['lab', 'up', '--name', NAME, '--hosts', '2', '--backend', 'vxlan', '--topology', 'routed']);
    expect(up.code, up.stdout + up.stderr).toBe(0);
    ui = await startUi();
    browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    page = await browser.newPage();
    await page.setRequestInterception(true);
    const origin = ui.url;
    page.on('request', (req) => {
      if (req.url().startsWith(origin)) return void req.continue();
      refused.push(req.url());
      return void req.abort();
    });
    await page.setViewport({ width: 1280, height: 900 });
  });

  afterAll(async () => {
    await browser?.close();
    if (ui) await stopUi(ui.child);
    const down = await twill(['lab', 'down', '--name', NAME]);
    expect(down.code, down.stderr).toBe(0);
    expect(await labNamespaces(NAME)).toEqual([]);
  });

  it('draws the topology and every agent ready with its peer programmed, live', async () => {
    await page.goto(ui!.url);
    await page.waitForSelector('body[data-ready="true"]');
    const nodes = await page.$$eval('#topology [data-node]', (els) => els.map((e) => e.getAttribute('data-node')).sort());
    expect(nodes).toEqual(['etcd', 'h1', 'h1-p1', 'h2', 'h2-p1', 'out', 'rt']);
    expect(await page.$$eval('#topology [data-segment]', (els) => els.map((e) => e.getAttribute('data-segment')))).toEqual(['A', 'B']);
    // The agents' states come from polling /api/agents: both ready, each with the other programmed.
    await page.waitForFunction(() => document.querySelectorAll('#agents .agent-state.ready').length === 2 && document.querySelectorAll('#agents .peer-programmed').length === 2, { timeout: 30_000 });
    expect(await page.$eval('#agents tr[data-host="h1"] .peer', (e) => e.getAttribute('data-peer'))).toBe('h2');
    expect(await page.$$eval('#topology [data-agent="ready"]', (els) => els.length)).toBe(2);
    const first = await page.$eval('#agents-updated', (e) => e.textContent);
    await page.waitForFunction((before) => document.querySelector('#agents-updated')?.textContent !== before, { timeout: 10_000 }, first);
  });

  it('traces h1-p1 to h2-p1 across the router and draws every hop as seen', async () => {
    await page.select('#from', 'h1-p1');
    await page.select('#to', 'h2-p1');
    await page.click('#trace');
    await page.waitForSelector('#trace-status.complete, #trace-status.broken, #trace-status.error', { timeout: TRACE_TIMEOUT_MS });
    const status = await page.$eval('#trace-status', (e) => `${e.className}: ${e.textContent}`);
    expect(status).toMatch(/^complete: h1-p1 10\.244\.\d+\.\d+ → h2-p1 .*every hop saw it/);

    const rows = await page.$$eval('#hops tr.hop-row', (els) =>
      els.map((e) => ({ id: e.getAttribute('data-hop-id'), role: e.getAttribute('data-role'), seen: e.classList.contains('seen'), layers: e.querySelector('.layers')?.getAttribute('data-layers') ?? '', overhead: e.children[3]?.textContent })),
    );
    const marks = await page.$$eval('#topology .hop-mark', (els) => els.map((e) => ({ id: e.getAttribute('data-hop-id'), step: e.getAttribute('data-step'), seen: e.classList.contains('seen') })));
    expect(marks.map((m) => m.id)).toEqual(rows.map((r) => r.id));
    expect(marks.map((m) => m.step)).toEqual(rows.map((_, i) => String(i + 1)));
    expect(await page.$$('.hop.lost')).toHaveLength(0);
    expect(rows.every((r) => r.seen) && marks.every((m) => m.seen)).toBe(true);
    // Out of h1-p1, through h1, across both router legs, into h2 and h2-p1.
    const ids = rows.map((r) => r.id ?? '');
    expect(ids[0]).toBe('h1-p1:eth0');
    expect(ids.at(-1)).toBe('h2-p1:eth0');
    for (const id of ['h1:cni0', 'h1:flannel.1', 'h1:eth0', 'rt:eth0', 'rt:eth1', 'h2:eth0', 'h2:flannel.1', 'h2:cni0']) expect(ids).toContain(id);
    // On the underlay the ping travels inside VXLAN: outer UDP to 8472, 50 bytes of overhead.
    for (const r of rows.filter((row) => row.role === 'underlay' || row.role === 'router')) {
      expect(r.layers, r.id ?? '').toMatch(/^ether,ipv4,udp,vxlan,ether,ipv4,icmp$/);
      expect(r.overhead).toBe('50');
    }
    const podRow = rows.find((r) => r.role === 'pod');
    expect(podRow?.layers).toBe('ether,ipv4,icmp');
    expect(podRow?.overhead).toBe('0');

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(refused).toEqual([]);
  });
});
