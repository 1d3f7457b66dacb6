/**
 * `twill bench` end to end: a short run (1 s per test) writes results.json, report.md and
 * report.svg with every case and sane figures; preflight failures build nothing; Ctrl-C tears
 * the lab down.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { median } from '../../src/tools/bench/stats.js';
import { fmtRatio } from '../../src/tools/bench/table.js';
import type { BenchResults, CaseSummary } from '../../src/tools/bench/results.js';
import { assertBuilt, CLI, isRoot, labNamespaces, run, twill } from '../support/lab.js';
import { createNetns, deleteNetnsByPrefix, nsExec } from '../support/netns.js';

// Not the default "bench": a user's `twill bench` running meanwhile keeps its lab.
const LAB = 'tbench';
const LAB_DIR = `/tmp/twill-lab/${LAB}`;
const CASES = ['underlay', 'host-gw', 'vxlan', 'udp', 'node-udp', 'flannel-udp'] as const;
const NU_PREFIX = 'twl-t-nu';
const NU_NS = `${NU_PREFIX}-1`;

describe.skipIf(!isRoot())('twill bench', () => {
  let out = '';

  beforeAll(async () => {
    assertBuilt();
    await twill(['lab', 'down', '--name', LAB]);
    out = await mkdtemp(join(tmpdir(), 'twill-bench-'));
  });

  afterAll(async () => {
    await twill(['lab', 'down', '--name', LAB]);
    await rm(out, { recursive: true, force: true });
  });

  it('refuses to run without root, building nothing', async () => {
    const res = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'bench', '--name', LAB, '--duration', '1'], { uid: 65534, gid: 65534, cwd: '/' });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('close', (code) => resolve({ code: code ?? 128, stderr }));
    });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toContain('twill bench needs root');
    expect(res.stderr).toContain('[TWILL_ERR_LAB_NOT_ROOT]');
    expect(await labNamespaces(LAB)).toEqual([]);
  });

  it('says iperf3 is missing before it builds anything', async () => {
    // Every program the lab and the bench run, except iperf3 (which lives in /usr/bin, not searched here).
    const bin = await mkdtemp(join(tmpdir(), 'twill-path-'));
    for (const p of ['ip', 'sysctl', 'etcd', 'etcdctl', 'iptables', 'nft', 'ping', 'ss']) {
      const where = (await run('sh', ['-c', `command -v ${p}`])).stdout.trim();
      await symlink(where, join(bin, p));
    }
    const res = await run(process.execPath, [CLI, 'bench', '--name', LAB, '--duration', '1'], { ...process.env, PATH: bin });
    await rm(bin, { recursive: true, force: true });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(/iperf3 is not installed.*\[TWILL_ERR_KERNEL_NOT_FOUND\]/);
    expect(await labNamespaces(LAB)).toEqual([]);
    expect(existsSync(LAB_DIR)).toBe(false);
  });

  it("stops node-udp, the Node.js reference forwarder, with its usage on bad arguments and with the error when the peer is unreachable", async () => {
    const script = join(CLI, '../../tools/bench/reference/node-udp.js');
    for (const args of [[], ['twill0', '8285', '198.18.0.12'], ['twill0', 'port', '198.18.0.12', '10.244.1.0/24'], ['twill0', '8285', '198.18.0.300', '10.244.1.0/24'], ['twill0', '8285', '198.18.0.12', '10.244.1.0']]) {
      const res = await run(process.execPath, [script, ...args]);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toContain('usage: node-udp DEV PORT PEER_IP PEER_SUBNET/LEN');
    }
    // A namespace with no route to the peer: connect() fails, and it says so and exits.
    await createNetns(NU_PREFIX, [NU_NS]);
    try {
      const res = await nsExec(NU_NS, process.execPath, [script, 'twl0', '8285', '198.18.0.12', '10.244.1.0/24'], true);
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toContain('node-udp: connect ENETUNREACH 198.18.0.12:8285');
    } finally {
      await deleteNetnsByPrefix(NU_PREFIX);
    }
  });

  it('measures every case and writes results.json, report.md and report.svg', async () => {
    const res = await run(process.execPath, [CLI, 'bench', '--name', LAB, '--cases', CASES.join(','), '--duration', '1', '--repeat', '1', '--pings', '200', '--joins', '3', '--out', out], process.env, 170_000);
    process.stderr.write(`bench (${CASES.length} cases, 1 s tests) took ${res.ms} ms\n`);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/\[udp run 1\/1\] iperf3 TCP, 4 streams, 1 s \(step \d+, about \d+s left\)/);
    expect(res.stdout).toContain('| udp ');
    expect(await labNamespaces(LAB)).toEqual([]);

    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as BenchResults & { summary: CaseSummary[] };
    expect(results.cases.map((c) => c.name)).toEqual([...CASES]);
    expect(results.machine.cores).toBeGreaterThan(0);
    expect(results.machine.node).toBe(process.version);
    for (const c of results.cases) {
      expect(c.runs).toHaveLength(1);
      const [r] = c.runs;
      expect(r!.tcp1.bitsPerSecond, c.name).toBeGreaterThan(0);
      expect(r!.tcp4.bitsPerSecond, c.name).toBeGreaterThan(0);
      expect(r!.udp.datagramsPerSecond, c.name).toBeGreaterThan(0);
      expect(r!.rttMs.length, c.name).toBeGreaterThanOrEqual(190);
      expect(r!.pingsSent).toBe(200);
      expect(r!.rttBusyMs.length, c.name).toBeGreaterThanOrEqual(900);
      if (c.name === 'underlay') {
        expect(r!.agentCpu).toBeNull();
        expect(c.convergence).toBeNull();
      } else if (c.name === 'flannel-udp' || c.name === 'node-udp') {
        expect(r!.agentCpu?.hosts).toEqual(['h1', 'h2']); // the reference forwarders' CPU, in the agents' place
        expect(r!.agentCpu!.cpuSeconds).toBeGreaterThan(0);
        expect(c.convergence).toBeNull();
      } else {
        expect(r!.agentCpu?.hosts).toEqual(['h1', 'h2']);
        expect(c.convergence?.joins).toHaveLength(3);
        for (const j of c.convergence!.joins) expect(Object.keys(j.hostsMs).sort()).toEqual(['h1', 'h2']);
      }
    }
    expect(results.cases.find((c) => c.name === 'udp')!.runs[0]!.agentCpu!.cpuSeconds).toBeGreaterThan(0); // udp's agents carry the packets

    // The ratios are the samples' medians over the underlay's and host-gw's.
    const tcp1 = (name: string): number => median(results.cases.find((c) => c.name === name)!.runs.map((r) => r.tcp1.bitsPerSecond));
    const udp = results.summary.find((s) => s.name === 'udp')!;
    expect(udp.vsUnderlay!.tcp1).toBe(tcp1('udp') / tcp1('underlay'));
    expect(udp.vsHostGw!.tcp1).toBe(tcp1('udp') / tcp1('host-gw'));
    const report = await readFile(join(out, 'report.md'), 'utf8');
    const udpRatioRow = report.split('\n').find((l) => l.startsWith('| udp ') && l.includes('×'));
    expect(udpRatioRow).toContain(fmtRatio(tcp1('udp') / tcp1('underlay')));
    expect(udpRatioRow).toContain(fmtRatio(tcp1('udp') / tcp1('host-gw')));
    for (const c of CASES) expect(report).toContain(`| ${c} `);

    const svg = await readFile(join(out, 'report.svg'), 'utf8');
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const c of CASES) expect(svg).toContain(`>${c}</text>`);
    expect(svg).not.toMatch(/NaN|undefined/);
  });

  it('tears the lab down and exits non-zero when interrupted', async () => {
    const child = spawn(process.execPath, [CLI, 'bench', '--name', LAB, '--cases', 'host-gw', '--duration', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const measuring = new Promise<void>((resolve) => {
      child.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (/\] iperf3 TCP/.test(stderr)) resolve();
      });
    });
    const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 128)));
    await Promise.race([measuring, exited]);
    expect(await labNamespaces(LAB), stderr).not.toEqual([]);
    const t0 = Date.now();
    child.kill('SIGINT');
    const code = await exited;
    process.stderr.write(`bench stopped ${Date.now() - t0} ms after SIGINT\n`);
    expect(code, stderr).toBe(2);
    expect(stderr).toContain(`lab down: removing twl-${LAB}-* (interrupted)`);
    expect(stderr).toContain('interrupted by SIGINT');
    expect(await labNamespaces(LAB)).toEqual([]);
    expect(existsSync(LAB_DIR)).toBe(false);
  });
});
