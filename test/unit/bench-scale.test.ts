// `twill bench scale`'s pure parts: options, the summary (ratios to the floor, the targets), the
// tables, report.md and report.svg, the floor's batch lines, what the driver is told of a backend.
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import { parseChildCpuTicks, parseCpuTicks, parseMemory } from '../../src/tools/kernel/process.js';
import { withBenchOptions, type ScaleFlags } from '../../src/tools/bench/scale-command.js';
import { floorLines, floorNamespace } from '../../src/tools/bench/scale-floor.js';
import { driverConfig } from '../../src/tools/bench/scale-lab.js';
import { estimateScaleSeconds, parseBackends, parsePeers, waitTimeoutMs } from '../../src/tools/bench/scale-plan.js';
import { summarizeScale, type CellResult, type ScaleResults } from '../../src/tools/bench/scale-results.js';
import { logRange, renderScaleSvg } from '../../src/tools/bench/scale-svg.js';
import { fmtBytes, renderScaleReport, renderScaleTables } from '../../src/tools/bench/scale-table.js';
import { isLabNamespace } from '../../src/tools/lab/naming.js';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isTwillError(e) ? e.code : 'not a TwillError';
  }
  return undefined;
}

const timing = (ms: number, resolutionMs = 20) => ({ ms, resolutionMs, polls: 3 });
const cell = (backend: string, peers: number, s: { cold: number; add: number; del: number; cpu: number; rss: number }): CellResult => ({
  backend,
  peers,
  coldStart: timing(s.cold),
  burstDelete: { ...timing(s.del), writeMs: 10 },
  burstAdd: { ...timing(s.add, 0), writeMs: 12 },
  idle: { seconds: 60, cpuSeconds: s.cpu, childCpuSeconds: s.cpu / 2 },
  memory: { rssBytes: s.rss * 2 ** 20, peakBytes: (s.rss + 20) * 2 ** 20 },
  api: [
    { path: '/v1/status', bytes: peers * 150, latenciesMs: [5, 7, 6] },
    { path: '/metrics', bytes: 12_000, latenciesMs: [3, 4, 100] },
  ],
  error: null,
});

const results: ScaleResults = {
  schema: 'twill-bench-scale/1',
  date: '2026-12-01T10:00:00.000Z',
  machine: { cores: 2, cpuModel: 'Fast <CPU> & co', memoryGiB: 4, kernel: '6.1.0', arch: 'x64', node: 'v20.20.0' },
  loadAverage: { start: [0.1, 0.2, 0.3], end: [0.4, 0.5, 0.6] },
  settings: { peers: [1000, 5000], backends: ['host-gw', 'udp'], churnPeers: 1000, churnRate: 50, churnSeconds: 30, idleSeconds: 60, floorRepeat: 3, apiProbes: 3, pollMs: 20 },
  floor: [
    { peers: 1000, addMs: [30, 27, 40], deleteMs: [20, 22, 21] },
    { peers: 5000, addMs: [150, 140, 160], deleteMs: [100, 90, 95] },
  ],
  cells: [
    cell('host-gw', 1000, { cold: 2000, add: 81, del: 42, cpu: 0.3, rss: 90 }),
    cell('host-gw', 5000, { cold: 3000, add: 900, del: 700, cpu: 0.9, rss: 100 }),
    cell('udp', 1000, { cold: 2500, add: 60, del: 50, cpu: 0.2, rss: 95 }),
    { ...cell('udp', 5000, { cold: 3100, add: 400, del: 300, cpu: 0.3, rss: 120 }), burstDelete: null, burstAdd: null, error: 'udp: burst: timed out after 210 s' },
  ],
  churn: [
    { backend: 'host-gw', peers: 1000, rate: 50, seconds: 30, changes: 1500, writeSeconds: 30.2, lag: timing(180), cpuSeconds: 6, childCpuSeconds: 3, wallSeconds: 30.5, error: null },
    { backend: 'udp', peers: 1000, rate: 50, seconds: 30, changes: 1500, writeSeconds: null, lag: null, cpuSeconds: null, childCpuSeconds: null, wallSeconds: null, error: 'the agent exited' },
  ],
};

const cells = (line: string): string[] => line.split('|').slice(1, -1).map((c) => c.trim());

/** The cell of the markdown table with `column` in its header, in the row whose first cells are `row`. */
function tableCell(text: string, row: readonly string[], column: string): string | undefined {
  const lines = text.split('\n');
  const h = lines.findIndex((l) => l.startsWith('|') && cells(l).includes(column));
  if (h < 0) return undefined;
  const col = cells(lines[h]!).indexOf(column);
  const body = lines.slice(h + 2);
  const end = body.findIndex((l) => !l.startsWith('|'));
  const line = body.slice(0, end < 0 ? undefined : end).find((l) => row.every((r, i) => cells(l)[i] === r));
  return line === undefined ? undefined : cells(line)[col];
}

describe('bench scale summary', () => {
  const summary = summarizeScale(results);
  const of = (backend: string, peers: number) => summary.cells.find((c) => c.backend === backend && c.peers === peers)!;

  it('takes the floor as the median of its repeats', () => {
    expect(summary.floor).toEqual([
      { peers: 1000, addS: 0.03, deleteS: 0.021 },
      { peers: 5000, addS: 0.15, deleteS: 0.095 },
    ]);
  });

  it('divides each raw figure by the floor of the same N: adds for cold start and burst of adds, deletes for deletes', () => {
    const c = of('host-gw', 1000);
    expect(c.coldStartS).toBe(2);
    expect(c.vsFloor.coldStart).toBe(2 / 0.03);
    expect(c.vsFloor.burstAdd).toBe(0.081 / 0.03);
    expect(c.vsFloor.burstDelete).toBe(0.042 / 0.021);
    expect(of('udp', 5000).vsFloor).toEqual({ coldStart: 3.1 / 0.15, burstAdd: null, burstDelete: null });
  });

  it('gives idle CPU in % of a core (with the programs the agent ran, and without), memory in MB, the APIs\' median latency and size', () => {
    const c = of('host-gw', 5000);
    expect(c.idleCpuPercent).toBeCloseTo(2.25, 12);
    expect(c.idleOwnCpuPercent).toBeCloseTo(1.5, 12);
    expect([c.rssMB, c.peakRssMB]).toEqual([100, 120]);
    expect(c.status).toEqual({ bytes: 750_000, medianMs: 6 });
    expect(c.metrics).toEqual({ bytes: 12_000, medianMs: 4 });
  });

  it('gives churn CPU as a share of a core over the churn and its lag', () => {
    expect(summary.churn[0]).toMatchObject({ lagS: 0.18, cpuCores: 9 / 30.5, ownCpuCores: 6 / 30.5 });
    expect(summary.churn[1]).toMatchObject({ lagS: null, cpuCores: null, error: 'the agent exited' });
  });

  it('checks the targets: met, missed, and not measured where the figure is missing or the N did not run', () => {
    const t = (backend: string, prefix: string) => summary.targets.find((x) => x.backend === backend && x.target.startsWith(prefix))!;
    // 3 × 0.15 + 0.5 = 0.95 s: host-gw's 0.9 s adds are in, its 0.7 s deletes too (3 × 0.095 + 0.5 = 0.785).
    expect(t('host-gw', 'burst of 5000 adds')).toMatchObject({ pass: true, measured: '0.9 s (limit 0.95 s)' });
    expect(t('host-gw', 'burst of 5000 deletes')).toMatchObject({ pass: true, measured: '0.7 s (limit 0.785 s)' });
    expect(t('udp', 'burst of 5000 adds').pass).toBeNull();
    expect(t('host-gw', 'churn lag')).toMatchObject({ pass: true });
    expect(t('udp', 'churn lag')).toMatchObject({ pass: null, measured: 'not measured' });
    expect(t('host-gw', 'idle CPU at 5000')).toMatchObject({ pass: false, measured: '2.25 %' });
    expect(t('udp', 'idle CPU at 5000')).toMatchObject({ pass: true, measured: '0.75 %' });
    expect(t('host-gw', 'RSS at 10000').pass).toBeNull();
    expect(summary.targets).toHaveLength(2 * 5);
    const big = summarizeScale({ ...results, settings: { ...results.settings, peers: [10_000] }, cells: [cell('udp', 10_000, { cold: 1, add: 1, del: 1, cpu: 1, rss: 160 })] });
    expect(big.targets.find((x) => x.backend === 'udp' && x.target.startsWith('RSS'))).toMatchObject({ pass: false, measured: '160 MB (peak 180 MB)' });
  });
});

describe('bench scale report', () => {
  const summary = summarizeScale(results);
  const text = renderScaleTables(summary);

  it('prints the floor, every N × backend with its ratios, churn and the targets', () => {
    expect(tableCell(text, ['1000'], 'floor: ip -batch of N route adds')).toBe('0.030 s');
    expect(tableCell(text, ['5000', 'host-gw'], 'burst of N adds')).toBe('0.90 s');
    expect(tableCell(text, ['5000', 'host-gw'], 'idle CPU (own)')).toBe('2.25 % (1.50)');
    expect(tableCell(text, ['5000', 'host-gw'], 'RSS (peak)')).toBe('100 MB (120)');
    expect(tableCell(text, ['5000', 'host-gw'], '/v1/status size, latency')).toBe('732 kB, 6.00 ms');
    expect(tableCell(text, ['1000', 'host-gw'], 'burst of adds ÷ floor (adds)')).toBe('×2.70');
    expect(tableCell(text, ['5000', 'udp'], 'burst of N deletes')).toBe('failed');
    expect(tableCell(text, ['5000', 'udp'], 'burst of deletes ÷ floor (deletes)')).toBe('-');
    expect(tableCell(text, ['host-gw'], 'lag at the end')).toBe('0.18 s');
    expect(tableCell(text, ['host-gw'], 'changes')).toBe('50/s for 30 s, sent in 30.2 s');
    expect(tableCell(text, ['udp'], 'agent CPU (own)')).toBe('failed');
    expect(tableCell(text, ['host-gw'], 'agent CPU (own)')).toBe('0.30 core (0.20)');
    expect(tableCell(text, ['idle CPU at 5000 peers < 1 % of a core', 'host-gw'], '')).toBe('MISSED');
    expect(text).toContain('- udp, 5000 peers: udp: burst: timed out after 210 s');
    expect(text).toContain('- udp, churn: the agent exited');
  });

  it('writes report.md with the same tables, the machine, its load and the method', () => {
    const md = renderScaleReport(results, summary);
    expect(md).toContain(text.split('\n\n')[0]!);
    expect(md).toContain('Fast <CPU> & co');
    expect(md).toContain('load average 0.10, 0.20, 0.30 at the start, 0.40, 0.50, 0.60 at the end');
    expect(md).toContain('## How it was measured');
    expect(md).toContain("the median over this run's polled ends: 20.0 ms");
    expect(md).toContain('![burst times and the floor, per peer count](report.svg)');
  });

  it('draws report.svg: three log-scale panels, a bar per backend and the floor, none for a failed step', () => {
    const svg = renderScaleSvg(results, summary);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).not.toMatch(/NaN|undefined|Infinity/);
    expect(svg).toContain('Fast &lt;CPU&gt; &amp; co');
    for (const label of ['>floor (ip -batch)</text>', '>host-gw</text>', '>udp</text>', '>Burst of N deletes, s</text>']) expect(svg).toContain(label);
    expect(svg).toContain('<title>5000 peers, host-gw: 0.90 s</title>');
    expect(svg).not.toContain('<title>5000 peers, udp: 0.40 s</title>'); // its bursts failed
    expect(svg.match(/<rect [^>]*><title>/g)).toHaveLength(3 * 2 * 3 - 2);
    expect(logRange([0.021, 3.1])).toEqual({ lo: -2, hi: 1 });
    expect(logRange([0, NaN])).toEqual({ lo: -3, hi: 0 });
    expect(logRange([1])).toEqual({ lo: 0, hi: 1 });
  });

  it('writes sizes in binary units', () => {
    expect([fmtBytes(512), fmtBytes(2048), fmtBytes(3 * 2 ** 20)]).toEqual(['512 B', '2.00 kB', '3.00 MB']);
  });
});

describe('bench scale options', () => {
  it('takes peer counts ascending, once each, within the fake peers there are', () => {
    expect(parsePeers('10000,100, 1000,100')).toEqual([100, 1000, 10_000]);
    for (const bad of ['', '0', '16001', 'x', '1.5', '-3']) expect(codeOf(() => parsePeers(bad))).toBe('TWILL_ERR_OPTION_INVALID');
  });

  it('takes backends from the table, in the order given', () => {
    expect(parseBackends('udp,host-gw,udp', ['host-gw', 'udp'])).toEqual(['udp', 'host-gw']);
    expect(codeOf(() => parseBackends('vxlan', ['host-gw', 'udp']))).toBe('TWILL_ERR_OPTION_INVALID');
    expect(codeOf(() => parseBackends(',', ['host-gw', 'udp']))).toBe('TWILL_ERR_OPTION_INVALID');
  });

  it('estimates more time for more peers, backends and idle seconds; waits longer for more peers', () => {
    const s = results.settings;
    const base = estimateScaleSeconds(s);
    expect(base).toBeGreaterThan(2 * (2 * 60 + 30));
    expect(estimateScaleSeconds({ ...s, peers: [...s.peers, 10_000] })).toBeGreaterThan(base);
    expect(estimateScaleSeconds({ ...s, backends: ['udp'] })).toBeLessThan(base);
    expect(estimateScaleSeconds({ ...s, peers: [100] })).toBeGreaterThan(estimateScaleSeconds({ ...s, peers: [100], churnPeers: 100 })); // churn needs its own setup
    expect(waitTimeoutMs(10_000)).toBeGreaterThan(waitTimeoutMs(100));
  });

  it("takes --name and --out given after `scale` from bench's parse, and refuses bench's other options", async () => {
    const seen: ScaleFlags[] = [];
    const parse = async (argv: string[]): Promise<void> => {
      const program = new Command('twill').exitOverride();
      const bench = program.command('bench').option('--name <lab>', '', 'bench').option('--out <dir>').option('--duration <s>', '', '10').action(() => undefined);
      bench
        .command('scale')
        .option('--name <lab>', '', 'scale')
        .option('--out <dir>')
        .option('--peers <list>', '', '100')
        .action((flags: ScaleFlags, cmd: Command) => void seen.push(withBenchOptions(flags, cmd.parent)));
      await program.parseAsync(['node', 'twill', 'bench', 'scale', ...argv]);
    };
    await parse(['--peers', '5', '--out', '/tmp/x', '--name', 'sc']);
    expect(seen.pop()).toMatchObject({ peers: '5', out: '/tmp/x', name: 'sc' });
    await parse([]);
    expect(seen.pop()).toEqual({ name: 'scale', peers: '100' });
    await expect(parse(['--duration', '3'])).rejects.toMatchObject({ code: 'TWILL_ERR_OPTION_INVALID', message: 'twill bench scale does not take --duration (an option of twill bench)' });
  });
});

describe('bench scale parts', () => {
  it('reads the CPU of the programs a process ran (cutime + cstime) apart from its own', () => {
    const stat = '4242 (node (twill) x) S 1 4242 4242 0 -1 4194560 9000 0 12 0 250 75 40 2 20 0 11 0 123456 1000000 5000';
    expect([parseCpuTicks(stat), parseChildCpuTicks(stat)]).toEqual([325, 42]);
    expect(parseChildCpuTicks('garbage')).toBeNull();
  });

  it("reads VmRSS and VmHWM from /proc/PID/status", () => {
    expect(parseMemory('Name:\tnode\nVmHWM:\t  120000 kB\nVmRSS:\t   98000 kB\n')).toEqual({ rssBytes: 98000 * 1024, peakBytes: 120000 * 1024 });
    expect(parseMemory('Name:\tkthreadd\n')).toBeNull();
  });

  it("builds the floor: a veth inside a namespace the lab's teardown knows, the same routes as host-gw's, then their deletes", () => {
    const l = floorLines(2);
    expect(l.setup).toContain('addr add 198.18.64.1/18 dev veth0');
    expect(l.add).toEqual(['route add 10.1.0.0/24 via 198.18.64.2 dev veth0 proto 116', 'route add 10.1.1.0/24 via 198.18.64.3 dev veth0 proto 116']);
    expect(l.del).toEqual(['route del 10.1.0.0/24 proto 116', 'route del 10.1.1.0/24 proto 116']);
    expect(floorNamespace('scale')).toBe('twl-scale-floor');
    expect(isLabNamespace('scale', 'twl-scale-floor')).toBe(true);
  });

  it('tells the driver each backend\'s lease fields and where "programmed" shows', () => {
    expect(driverConfig('host-gw', 'http://e:2379', 'http://a:8475', 20)).toEqual({
      etcd: 'http://e:2379',
      api: 'http://a:8475',
      template: { publicIPv6: null, backendType: 'host-gw' },
      programmedBy: 'kernel-routes',
      pollMs: 20,
      txnOps: 128,
      parallel: 4,
    });
    expect(driverConfig('udp', 'e', 'a', 20)).toMatchObject({ template: { publicIPv6: null }, programmedBy: 'agent-api' });
  });
});
