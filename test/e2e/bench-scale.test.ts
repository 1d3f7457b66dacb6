/**
 * `twill bench scale` end to end, small: 100 fake peers, both backends, 3 s of churn at 1,000
 * peers. It writes results.json, report.md and report.svg with every N × backend measured and
 * ratios that are the raw figures over the floor; it leaves no namespace behind, also when
 * interrupted; without root it builds nothing.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { median } from '../../src/tools/bench/stats.js';
import type { ScaleResults, ScaleSummary } from '../../src/tools/bench/scale-results.js';
import { assertBuilt, CLI, isRoot, labNamespaces, run, twill } from '../support/lab.js';

// Not the default "scale": a user's run meanwhile keeps its lab.
const LAB = 'tscale';
const LAB_DIR = `/tmp/twill-lab/${LAB}`;
const BACKENDS = ['host-gw', 'udp'] as const;
const PROBES = 5;

describe.skipIf(!isRoot())('twill bench scale', () => {
  let out = '';

  beforeAll(async () => {
    assertBuilt();
    await twill(['lab', 'down', '--name', LAB]);
    out = await mkdtemp(join(tmpdir(), 'twill-scale-'));
  });

  afterAll(async () => {
    await twill(['lab', 'down', '--name', LAB]);
    await rm(out, { recursive: true, force: true });
  });

  it('refuses to run without root, building nothing', async () => {
    const res = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'bench', 'scale', '--name', LAB, '--peers', '100'], { uid: 65534, gid: 65534, cwd: '/' });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('close', (code) => resolve({ code: code ?? 128, stderr }));
    });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain('twill bench scale needs root');
    expect(res.stderr).toContain('[TWILL_ERR_LAB_NOT_ROOT]');
    expect(await labNamespaces(LAB)).toEqual([]);
  });

  it('measures every N × backend against the floor and writes results.json, report.md and report.svg', async () => {
    const args = ['bench', 'scale', '--name', LAB, '--peers', '100', '--churn-seconds', '3', '--idle-seconds', '6', '--probes', String(PROBES), '--out', out];
    const res = await run(process.execPath, [CLI, ...args], process.env, 170_000);
    process.stderr.write(`bench scale (100 peers, both backends, 3 s churn) took ${res.ms} ms\n`);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/\[host-gw, 100 peers\] burst: 100 adds \(step \d+, about \d+s left\)/);
    expect(await labNamespaces(LAB)).toEqual([]);
    expect(existsSync(LAB_DIR)).toBe(false);

    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as ScaleResults & { summary: ScaleSummary };
    expect(results.schema).toBe('twill-bench-scale/1');
    expect(results.machine.node).toBe(process.version);
    expect(results.settings).toMatchObject({ peers: [100], backends: [...BACKENDS], churnPeers: 1000, churnRate: 50, churnSeconds: 3 });
    const [floor] = results.floor;
    expect(floor?.peers).toBe(100);
    expect(floor?.addMs).toHaveLength(3);
    for (const ms of [...floor!.addMs, ...floor!.deleteMs]) expect(ms).toBeGreaterThan(0);

    expect(results.cells.map((c) => `${c.backend} ${c.peers}`)).toEqual(BACKENDS.map((b) => `${b} 100`));
    for (const c of results.cells) {
      expect(c.error, c.backend).toBeNull();
      for (const t of [c.coldStart, c.burstAdd, c.burstDelete]) expect(t?.ms, c.backend).toBeGreaterThan(0);
      expect(c.idle?.seconds).toBeGreaterThanOrEqual(6);
      expect(c.idle?.cpuSeconds, c.backend).toBeGreaterThan(0);
      expect(c.memory?.rssBytes).toBeGreaterThan(10 * 2 ** 20);
      expect(c.memory!.peakBytes).toBeGreaterThanOrEqual(c.memory!.rssBytes);
      expect(c.api.map((a) => a.path)).toEqual(['/v1/status', '/metrics']);
      for (const a of c.api) {
        expect(a.bytes).toBeGreaterThan(1000);
        expect(a.latenciesMs).toHaveLength(PROBES);
      }
      // The ratios are the raw figures over the floor's medians: adds for cold start and burst of adds.
      const s = results.summary.cells.find((x) => x.backend === c.backend)!;
      expect(s.vsFloor.coldStart).toBe(c.coldStart!.ms / 1000 / (median(floor!.addMs) / 1000));
      expect(s.vsFloor.burstAdd).toBe(c.burstAdd!.ms / 1000 / (median(floor!.addMs) / 1000));
      expect(s.vsFloor.burstDelete).toBe(c.burstDelete!.ms / 1000 / (median(floor!.deleteMs) / 1000));
    }
    expect(results.churn.map((c) => c.backend)).toEqual([...BACKENDS]);
    for (const c of results.churn) {
      expect(c.error, c.backend).toBeNull();
      expect(c.changes).toBe(150);
      expect(c.lag?.ms, c.backend).toBeGreaterThan(0);
      expect(c.cpuSeconds, c.backend).toBeGreaterThan(0);
    }

    const report = await readFile(join(out, 'report.md'), 'utf8');
    for (const b of BACKENDS) expect(report).toMatch(new RegExp(`^\\| 100 +\\| ${b} +\\| .* s +\\|`, 'm'));
    expect(report).toContain('## How it was measured');
    const svg = await readFile(join(out, 'report.svg'), 'utf8');
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).not.toMatch(/NaN|undefined/);
    for (const b of BACKENDS) expect(svg).toContain(`>${b}</text>`);
  });

  it('tears everything down and exits non-zero when interrupted', async () => {
    const child = spawn(process.execPath, [CLI, 'bench', 'scale', '--name', LAB, '--peers', '100', '--idle-seconds', '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const idle = new Promise<void>((resolve) => {
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (/\] idle: agent CPU/.test(stderr)) resolve();
      });
    });
    const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 128)));
    await Promise.race([idle, exited]);
    expect(await labNamespaces(LAB), stderr).not.toEqual([]);
    const t0 = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    process.stderr.write(`bench scale stopped ${Date.now() - t0} ms after SIGINT\n`);
    expect(code, stderr).toBe(2);
    expect(stderr).toContain(`lab down: removing twl-${LAB}-* (interrupted)`);
    expect(stderr).toContain('interrupted by SIGINT');
    expect(await labNamespaces(LAB)).toEqual([]);
    expect(existsSync(LAB_DIR)).toBe(false);
    const left = await run('sh', ['-c', `ps -eo args | grep -c '[s]cale-driver.main.js' || true`]);
    expect(left.stdout.trim()).toBe('0');
  });
});
