import { describe, expect, it } from 'vitest';
import { planJoins } from '../../src/bench/convergence.js';
import { estimate, estimateSeconds, fmtDuration, parseCases, planLabs, Progress, runSeconds } from '../../src/bench/plan.js';
import { summarize, type BenchResults, type CaseResult, type RunSample } from '../../src/bench/results.js';
import { escapeXml, niceCeil, renderSvg } from '../../src/bench/svg.js';
import { fmtRatio, renderReport, renderTables } from '../../src/bench/table.js';
import { isTwillError } from '../../src/errors.js';

const run = (gbit: number, rtt: number, cpu: number | null = null): RunSample => ({
  tcp1: { bitsPerSecond: gbit * 1e9, bytes: gbit * 1.25e8, seconds: 1 },
  tcp4: { bitsPerSecond: gbit * 1.1e9, bytes: gbit * 1.375e8, seconds: 1 },
  udp: { payloadBytes: 1400, datagramsPerSecond: gbit * 1e4, sent: 100, lost: 10, lossPercent: 10, seconds: 1 },
  rttMs: [rtt, rtt, rtt * 2],
  pingsSent: 3,
  agentCpu: cpu === null ? null : { hosts: ['h1', 'h2'], cpuSeconds: cpu, bytes: gbit * 1.25e8 },
});

const kase = (name: CaseResult['name'], runs: RunSample[], joins: number[][] | null = null): CaseResult => ({
  name,
  lab: { name: 'bench', backend: name === 'udp' ? 'udp' : 'host-gw', reused: false },
  agentInDataPath: name === 'udp',
  runs,
  convergence: joins && { method: 'test', joins: joins.map(([a, b]) => ({ hostsMs: { h1: a!, h2: b! } })) },
});

const results: BenchResults = {
  schema: 'twill-bench/1',
  date: '2026-01-02T03:04:05.000Z',
  machine: { cores: 2, cpuModel: 'Fast <CPU> & co', memoryGiB: 4, kernel: '6.1.0', arch: 'x64', node: 'v20.20.0' },
  settings: { cases: ['underlay', 'host-gw', 'udp'], durationSeconds: 1, repeat: 3, pings: 3, hosts: 2, joins: 2 },
  cases: [
    kase('underlay', [run(10, 0.05), run(12, 0.06), run(11, 0.04)]),
    kase('host-gw', [run(9, 0.1, 0.01), run(8, 0.1, 0.01), run(10, 0.1, 0.01)], [[30, 40], [20, 10]]),
    kase('udp', [run(0.5, 1, 4), run(0.4, 1, 4), run(0.6, 2, 4)], [[5, 7], [9, 3]]),
  ],
};

describe('bench summary', () => {
  const [underlay, hostGw, udp] = summarize(results);

  it('takes medians and spreads over runs, ratios of medians', () => {
    expect(underlay?.tcp1Bps).toEqual({ median: 11e9, min: 10e9, max: 12e9, n: 3 });
    expect(udp?.vsUnderlay?.tcp1).toBe(0.5e9 / 11e9);
    expect(udp?.vsHostGw?.tcp1).toBe(0.5e9 / 9e9);
    expect(hostGw?.vsHostGw).toEqual({ tcp1: 1, tcp4: 1, udp: 1, rttMedian: 1 });
    expect(udp?.vsUnderlay?.rttMedian).toBe(1 / 0.05);
    expect(udp?.rttP99Ms.median).toBe(2);
  });

  it('counts CPU per 10^9 bytes and convergence as the slowest host per join', () => {
    expect(underlay?.cpuSecondsPerGB).toBeNull();
    expect(udp?.cpuSecondsPerGB?.median).toBeCloseTo(4 / 0.0625, 6);
    expect(hostGw?.convergenceMs).toEqual({ median: 20, worst: 40, joins: 2 }); // nearest rank: the lower median
    expect(udp?.convergenceMs).toEqual({ median: 7, worst: 9, joins: 2 });
    expect(underlay?.convergenceMs).toBeNull();
  });

  it('has no ratio to a case that did not run', () => {
    const [only] = summarize({ cases: [results.cases[2]!] });
    expect(only?.vsUnderlay).toBeNull();
    expect(only?.vsHostGw).toBeNull();
  });

  it('renders tables and a report with the figures and ratios', () => {
    const text = renderTables(summarize(results));
    expect(text).toContain('| udp ');
    expect(text).toContain('0.50 Gbit/s (0.40–0.60)');
    expect(text).toContain(fmtRatio(0.5 / 11));
    expect(text).toContain('(not in data path)');
    const md = renderReport(results, summarize(results));
    expect(md).toContain('Fast <CPU> & co');
    expect(md).toContain('![throughput and round trip per case](report.svg)');
  });

  it('draws an SVG with every case, escaped text and round axes', () => {
    const svg = renderSvg(results, summarize(results));
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const c of ['underlay', 'host-gw', 'udp']) expect(svg).toContain(`>${c}</text>`);
    expect(svg).toContain('Fast &lt;CPU&gt; &amp; co');
    expect(svg).not.toContain('NaN');
    expect(escapeXml(`a<b>"c'&`)).toBe('a&lt;b&gt;&quot;c&apos;&amp;');
    expect([niceCeil(13.2), niceCeil(0.72), niceCeil(4.15), niceCeil(100)]).toEqual([16, 0.8, 5, 100]);
  });
});

describe('bench plan', () => {
  it('shares a lab between the underlay and host-gw, else gives the underlay the first lab', () => {
    expect(planLabs(['underlay', 'host-gw', 'udp'])).toEqual([
      { backend: 'host-gw', cases: ['underlay', 'host-gw'] },
      { backend: 'udp', cases: ['udp'] },
    ]);
    expect(planLabs(['udp', 'underlay'])).toEqual([{ backend: 'udp', cases: ['udp', 'underlay'] }]);
    expect(planLabs(['underlay'])).toEqual([{ backend: 'host-gw', cases: ['underlay'] }]);
  });

  it('parses --cases', () => {
    expect(parseCases('udp, host-gw,udp')).toEqual(['udp', 'host-gw']);
    for (const bad of ['vxlan', '', ',']) {
      try {
        parseCases(bad);
        expect.unreachable();
      } catch (e) {
        expect(isTwillError(e, 'TWILL_ERR_OPTION_INVALID')).toBe(true);
      }
    }
  });

  it('estimates the run and counts the time left down per step', () => {
    const s = results.settings;
    const labs = planLabs(s.cases);
    const total = estimateSeconds(s, labs);
    expect(total).toBeCloseTo(2 * (estimate.labUp(2) + estimate.labDown()) + 2 * estimate.joins(2) + 3 * 3 * runSeconds(s), 9);
    const lines: string[] = [];
    const p = new Progress(125, (l) => lines.push(l));
    p.step('udp run 1/1', 'ping', 5);
    p.step('udp run 1/1', 'iperf3', 100);
    expect(lines).toEqual(['[udp run 1/1] ping (step 1, about 2m05s left)', '[udp run 1/1] iperf3 (step 2, about 2m00s left)']);
    expect(fmtDuration(59.4)).toBe('59s');
  });

  it('plans a join for a free subnet and an unused underlay address', () => {
    const state = {
      etcd: { ns: 'twl-b-etcd', endpoint: 'http://198.18.0.2:2379', pid: 1 },
      options: { name: 'b', hosts: 2, podsPerHost: 1, backend: 'udp' as const, topology: 'flat' as const, dir: '/tmp/x' },
      hosts: [
        { id: 'h1', ns: 'twl-b-h1', ip: '198.18.0.11', segment: 'A', pid: 1, subnet: '10.244.254.0/24' },
        { id: 'h2', ns: 'twl-b-h2', ip: '198.18.0.12', segment: 'A', pid: 2, subnet: '10.244.7.0/24' },
      ],
    };
    const plan = planJoins(state, 5);
    expect(plan.key).toBe('/coreos.com/network/subnets/10.244.253.0-24');
    expect(plan.subnet).toBe('10.244.253.0/24');
    expect(JSON.parse(plan.value)).toEqual({ PublicIP: '198.18.0.200', PublicIPv6: null, BackendType: 'udp' });
    expect(plan.hosts).toEqual([
      { id: 'h1', url: 'http://198.18.0.11:8475/v1/status' },
      { id: 'h2', url: 'http://198.18.0.12:8475/v1/status' },
    ]);
  });
});
