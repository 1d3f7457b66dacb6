import { describe, expect, it } from 'vitest';
import { planJoins } from '../../src/tools/bench/convergence.js';
import { estimate, estimateSeconds, fmtDuration, parseCases, planLabs, Progress, runSeconds } from '../../src/tools/bench/plan.js';
import { summarize, type BenchResults, type CaseResult, type RunSample } from '../../src/tools/bench/results.js';
import { quantile } from '../../src/tools/bench/stats.js';
import { escapeXml, niceCeil, renderSvg } from '../../src/tools/bench/svg.js';
import { fmtRatio, fmtSigned, renderReport, renderTables } from '../../src/tools/bench/table.js';
import { isTwillError } from '../../src/errors.js';

const run = (gbit: number, rtt: number, busy: number, cpu: number | null = null): RunSample => ({
  tcp1: { bitsPerSecond: gbit * 1e9, bytes: gbit * 1.25e8, seconds: 1 },
  tcp4: { bitsPerSecond: gbit * 1.1e9, bytes: gbit * 1.375e8, seconds: 1 },
  udp: { payloadBytes: 1400, datagramsPerSecond: gbit * 1e4, sent: 100, lost: 10, lossPercent: 10, seconds: 1 },
  rttMs: [rtt, rtt, rtt * 2],
  pingsSent: 3,
  rttBusyMs: [busy, busy * 3, busy, busy / 2],
  busyPingsSent: 5,
  agentCpu: cpu === null ? null : { hosts: ['h1', 'h2'], cpuSeconds: cpu, bytes: gbit * 1.25e8 },
});

const kase = (name: CaseResult['name'], runs: RunSample[], joins: number[][] | null = null): CaseResult => ({
  name,
  lab: { name: 'bench', backend: name === 'udp' ? 'udp' : 'host-gw', reused: false },
  agentInDataPath: name === 'udp',
  runs,
  convergence: joins && { method: 'test', joins: joins.map(([a, b]) => ({ hostsMs: { h1: a!, h2: b! } })) },
});

const cells = (line: string): string[] => line.split('|').slice(1, -1).map((c) => c.trim());

/** The cell in `row` (first column) under `column` of the markdown table whose header has that column. */
function cell(text: string, row: string, column: string): string | undefined {
  const lines = text.split('\n');
  const h = lines.findIndex((l) => l.startsWith('|') && cells(l).includes(column));
  if (h < 0) return undefined;
  const col = cells(lines[h]!).indexOf(column);
  const body = lines.slice(h + 2);
  const end = body.findIndex((l) => !l.startsWith('|'));
  const line = body.slice(0, end < 0 ? undefined : end).find((l) => cells(l)[0] === row);
  return line === undefined ? undefined : cells(line)[col];
}

const ADDED = 'RTT + over host-gw, idle / busy';

const results: BenchResults = {
  schema: 'twill-bench/2',
  date: '2026-01-02T03:04:05.000Z',
  machine: { cores: 2, cpuModel: 'Fast <CPU> & co', memoryGiB: 4, kernel: '6.1.0', arch: 'x64', node: 'v20.20.0' },
  settings: { cases: ['underlay', 'host-gw', 'udp'], durationSeconds: 1, repeat: 3, pings: 3, hosts: 2, joins: 2 },
  cases: [
    kase('underlay', [run(10, 0.05, 0.03), run(12, 0.06, 0.03), run(11, 0.04, 0.03)]),
    kase('host-gw', [run(9, 0.1, 0.08, 0.01), run(8, 0.1, 0.08, 0.01), run(10, 0.1, 0.08, 0.01)], [[30, 40], [20, 10]]),
    kase('udp', [run(0.5, 1, 0.2, 4), run(0.4, 1, 0.25, 4), run(0.6, 2, 0.2, 4)], [[5, 7], [9, 3]]),
  ],
};

describe('bench summary', () => {
  const [underlay, hostGw, udp] = summarize(results);

  it('takes medians and spreads over runs, ratios of medians', () => {
    expect(underlay?.tcp1Bps).toEqual({ median: 11e9, min: 10e9, max: 12e9, n: 3 });
    expect(udp?.vsUnderlay?.tcp1).toBe(0.5e9 / 11e9);
    expect(udp?.vsHostGw?.tcp1).toBe(0.5e9 / 9e9);
    expect(hostGw?.vsHostGw).toEqual({ tcp1: 1, tcp4: 1, udp: 1, rttMedian: 1, rttBusyMedian: 1 });
    expect(udp?.vsUnderlay?.rttMedian).toBe(1 / 0.05);
    expect(udp?.rttP99Ms.median).toBe(2);
  });

  it('takes the busy series apart from the idle one: its own median, ratios and counts', () => {
    // Per run the median of [b, 3b, b, b/2] is b (nearest rank); over runs the median and spread.
    expect(udp?.rttBusyMedianMs).toEqual({ median: 0.2, min: 0.2, max: 0.25, n: 3 });
    expect(hostGw?.rttBusyMedianMs.median).toBe(0.08);
    expect(udp?.vsHostGw?.rttBusyMedian).toBe(0.2 / 0.08);
    expect(udp?.vsUnderlay?.rttBusyMedian).toBe(0.2 / 0.03);
    expect(udp?.vsHostGw?.rttMedian).toBe(1 / 0.1); // the idle ratio stays the idle series'
    expect([udp?.pings, udp?.busyPings]).toEqual([9, 12]);
  });

  it('subtracts host-gw\'s medians for the added round trip, per series', () => {
    expect(udp?.addedRttMs?.idle).toBeCloseTo(0.9, 12);
    expect(udp?.addedRttMs?.busy).toBeCloseTo(0.12, 12);
    expect(hostGw?.addedRttMs).toEqual({ idle: 0, busy: 0 });
    expect(underlay?.addedRttMs?.idle).toBeCloseTo(-0.05, 12); // faster than host-gw
    expect(underlay?.addedRttMs?.busy).toBeCloseTo(-0.05, 12);
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
    expect(only?.addedRttMs).toBeNull();
    const [under, udpOnly] = summarize({ cases: [results.cases[0]!, results.cases[2]!] });
    expect(udpOnly?.vsUnderlay?.rttBusyMedian).toBe(0.2 / 0.03);
    expect(udpOnly?.addedRttMs).toBeNull();
    expect(under?.addedRttMs).toBeNull();
    expect(cell(renderTables([under!, udpOnly!]), 'udp', ADDED)).toBe('-');
  });

  it('renders tables and a report with the figures and ratios', () => {
    const text = renderTables(summarize(results));
    expect(text).toContain('| udp ');
    expect(text).toContain('0.50 Gbit/s (0.40–0.60)');
    expect(text).toContain(fmtRatio(0.5 / 11));
    expect(text).toContain('(not in data path)');
    expect(cell(text, 'udp', 'RTT idle (10 ms apart)')).toBe('1.00 ms (1.00–2.00)');
    expect(cell(text, 'udp', 'RTT busy (0.2 ms apart)')).toBe('0.20 ms (0.20–0.25)');
    expect(cell(text, 'udp', 'RTT p99')).toBe('2.00 ms (2.00–4.00)');
    expect(cell(text, 'udp', 'RTT idle ÷ host-gw')).toBe('×10.0');
    expect(cell(text, 'udp', 'RTT busy ÷ host-gw')).toBe('×2.50');
    expect(cell(text, 'udp', 'RTT busy ÷ underlay')).toBe(fmtRatio(0.2 / 0.03));
    expect(cell(text, 'udp', ADDED)).toBe('+0.90 / +0.12 ms');
    expect(cell(text, 'host-gw', ADDED)).toBe('0 / 0 ms');
    expect(cell(text, 'underlay', ADDED)).toBe('-0.050 / -0.050 ms');
    expect([fmtSigned(0.58), fmtSigned(-0.013), fmtSigned(0)]).toEqual(['+0.58', '-0.013', '0']);
    const md = renderReport(results, summarize(results));
    expect(md).toContain(text.split('\n\n')[0]); // the same tables as the terminal
    expect(md).toContain('3 pings 10 ms apart then 1000 0.2 ms apart');
    expect(md).toContain('ping -i 0.01 (idle; the p99 is of this series), then ping -i 0.0002 (busy)');
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
    expect(svg).toContain('<title>udp busy median: 0.20</title>');
    expect(svg).toContain('>busy median</text>');
    expect(svg).toContain('pings per run: 3, 10 ms apart (idle), then 1000, 0.2 ms apart (busy)');
    expect(escapeXml(`a<b>"c'&`)).toBe('a&lt;b&gt;&quot;c&apos;&amp;');
    expect([niceCeil(13.2), niceCeil(0.72), niceCeil(4.15), niceCeil(100)]).toEqual([16, 0.8, 5, 100]);
  });

  it('fits the axes to the bars, and cuts a taller whisker at the top with its value', () => {
    // udp's third run stalled: an idle p99 of 40 ms against medians of about 1 ms.
    const stalled: BenchResults = { ...results, cases: results.cases.map((c) => (c.name === 'udp' ? { ...c, runs: [...c.runs.slice(0, 2), { ...c.runs[2]!, rttMs: [1, 1, 40] }] } : c)) };
    const svg = renderSvg(stalled, summarize(stalled));
    const rttAxis = [...svg.matchAll(/<text [^>]*class="axis">([\d.]+)<\/text>/g)].map((m) => Number(m[1])).filter((v, i, all) => i >= all.indexOf(0, 1));
    expect(Math.max(...rttAxis)).toBeLessThan(40);
    const cutAt = /<text [^>]*>↑([\d.]+)<\/text>/.exec(svg);
    expect(Number(cutAt?.[1])).toBeCloseTo(quantile([1, 1, 40], 0.99), 0); // that run's p99, as printed
  });
});

describe('bench yardsticks: udp against flannel-udp and node-udp', () => {
  const yardstick = (name: 'flannel-udp' | 'node-udp', runs: RunSample[]): CaseResult => ({ ...kase(name, runs), agentInDataPath: true, convergence: null });
  const withFlannel: BenchResults = {
    ...results,
    settings: { ...results.settings, cases: ['underlay', 'host-gw', 'udp', 'flannel-udp'] },
    cases: [...results.cases, yardstick('flannel-udp', [run(0.25, 0.5, 0.1, 2), run(0.2, 0.5, 0.1, 2), run(0.3, 0.6, 0.1, 2)])],
  };
  const withBoth: BenchResults = {
    ...withFlannel,
    settings: { ...results.settings, cases: ['underlay', 'host-gw', 'udp', 'node-udp', 'flannel-udp'] },
    cases: [...results.cases, yardstick('node-udp', [run(0.3, 0.9, 0.15, 3)]), ...withFlannel.cases.slice(3)],
  };
  const summary = summarize(withFlannel);
  const udp = summary.find((c) => c.name === 'udp')!;

  it('gives every case its ratios over flannel-udp and its round trip over that one', () => {
    expect(udp.vsFlannelUdp?.tcp1).toBe(0.5 / 0.25);
    expect(udp.addedRttOverFlannelUdpMs).toEqual({ idle: 1 - 0.5, busy: 0.2 - 0.1 });
    expect(summarize(results).find((c) => c.name === 'udp')?.vsFlannelUdp).toBeNull();
  });

  it('prints a third table for udp and flannel-udp only, and report.md explains it', () => {
    const text = renderTables(summary);
    expect(cell(text, 'udp', 'TCP 1 ÷ flannel-udp')).toBe(fmtRatio(2));
    expect(cell(text, 'udp', 'agent CPU ÷ flannel-udp')).toBe(fmtRatio(1)); // 4 CPU-s for twice the bytes that cost flannel-udp 2
    expect(cell(text, 'udp', 'RTT + over flannel-udp, idle / busy')).toBe(`${fmtSigned(0.5)} / ${fmtSigned(0.1)} ms`);
    expect(cell(text, 'host-gw', 'TCP 1 ÷ flannel-udp')).toBeUndefined();
    expect(renderTables(summarize(results))).not.toContain('flannel-udp');
    expect(renderReport(withFlannel, summary)).toContain("flannel's udp proxy loop in C");
  });

  it('gives every case its round trip over node-udp, and lists node-udp among the yardsticks', () => {
    const both = summarize(withBoth);
    expect(both.find((c) => c.name === 'udp')?.addedRttOverNodeUdpMs).toEqual({ idle: 1 - 0.9, busy: 0.2 - 0.15 });
    expect(both.find((c) => c.name === 'flannel-udp')?.addedRttOverNodeUdpMs).toEqual({ idle: 0.5 - 0.9, busy: 0.1 - 0.15 });
    expect(summary.find((c) => c.name === 'udp')?.addedRttOverNodeUdpMs).toBeNull();
    const text = renderTables(both);
    expect(cell(text, 'node-udp', 'TCP 1 ÷ flannel-udp')).toBe(fmtRatio(0.3 / 0.25));
    expect(cell(text, 'node-udp', 'agent CPU ÷ flannel-udp')).toBe(fmtRatio(3 / 0.3 / (2 / 0.25)));
    expect(cell(text, 'udp', 'RTT + over node-udp, idle / busy')).toBe(`${fmtSigned(1 - 0.9)} / ${fmtSigned(0.2 - 0.15)} ms`);
    expect(cell(renderTables(summary), 'udp', 'RTT + over node-udp, idle / busy')).toBe('-');
    expect(renderReport(withBoth, both)).toContain('the floor for a forwarder in Node');
  });
});

describe('bench plan', () => {
  it('shares a lab between the underlay and host-gw, else gives the underlay the first lab', () => {
    expect(planLabs(['underlay', 'host-gw', 'udp'])).toEqual([
      { backend: 'host-gw', dataPath: 'twill', cases: ['underlay', 'host-gw'] },
      { backend: 'udp', dataPath: 'twill', cases: ['udp'] },
    ]);
    expect(planLabs(['udp', 'underlay'])).toEqual([{ backend: 'udp', dataPath: 'twill', cases: ['udp', 'underlay'] }]);
    expect(planLabs(['underlay'])).toEqual([{ backend: 'host-gw', dataPath: 'twill', cases: ['underlay'] }]);
  });

  it("gives flannel-udp a udp lab of its own, whose agents it replaces, and never the underlay's", () => {
    expect(planLabs(['udp', 'flannel-udp'])).toEqual([
      { backend: 'udp', dataPath: 'twill', cases: ['udp'] },
      { backend: 'udp', dataPath: 'flannel-udp', cases: ['flannel-udp'] },
    ]);
    expect(planLabs(['flannel-udp', 'underlay'])).toEqual([
      { backend: 'udp', dataPath: 'flannel-udp', cases: ['flannel-udp'] },
      { backend: 'host-gw', dataPath: 'twill', cases: ['underlay'] },
    ]);
  });

  it('gives node-udp a udp lab of its own too, whose agents it replaces', () => {
    expect(planLabs(['udp', 'node-udp', 'flannel-udp'])).toEqual([
      { backend: 'udp', dataPath: 'twill', cases: ['udp'] },
      { backend: 'udp', dataPath: 'node-udp', cases: ['node-udp'] },
      { backend: 'udp', dataPath: 'flannel-udp', cases: ['flannel-udp'] },
    ]);
  });

  it('gives udp-dgram a udp lab of its own whose agents run --udp-datapath dgram, never the underlay', () => {
    expect(planLabs(['udp-dgram', 'udp', 'underlay'])).toEqual([
      { backend: 'udp', dataPath: 'twill', udpDatapath: 'dgram', cases: ['udp-dgram'] },
      { backend: 'udp', dataPath: 'twill', cases: ['udp', 'underlay'] },
    ]);
    expect(planLabs(['udp-dgram', 'underlay'])).toEqual([
      { backend: 'udp', dataPath: 'twill', udpDatapath: 'dgram', cases: ['udp-dgram'] },
      { backend: 'host-gw', dataPath: 'twill', cases: ['underlay'] },
    ]);
  });

  it('parses --cases', () => {
    expect(parseCases('udp, host-gw,udp')).toEqual(['udp', 'host-gw']);
    expect(parseCases('vxlan')).toEqual(['vxlan']);
    expect(planLabs(['underlay', 'vxlan'])).toEqual([{ backend: 'vxlan', dataPath: 'twill', cases: ['underlay', 'vxlan'] }]);
    for (const bad of ['wireguard', '', ',']) {
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
      etcd: { ns: 'twl-b-etcd', endpoint: 'http://198.18.0.2:2379', members: [{ name: 'etcd1', endpoint: 'http://198.18.0.2:2379', pid: 1 }] },
      options: { name: 'b', hosts: 2, podsPerHost: 1, backend: 'udp' as const, topology: 'flat' as const, dir: '/tmp/x' },
      hosts: [
        { id: 'h1', ns: 'twl-b-h1', ip: '198.18.0.11', segment: 'A', pid: 1, subnet: '10.244.254.0/24' },
        { id: 'h2', ns: 'twl-b-h2', ip: '198.18.0.12', segment: 'A', pid: 2, subnet: '10.244.7.0/24' },
      ],
    };
    const plan = planJoins(state, 5);
    expect(plan.key).toBe('/coreos.com/network/subnets/10.244.253.0-24');
    expect(plan.subnet).toBe('10.244.253.0/24');
    // The lease a udp node writes, from the udp backend itself: flannel's udp lease has no BackendType.
    expect(JSON.parse(plan.value)).toEqual({ PublicIP: '198.18.0.200', PublicIPv6: null });
    expect(plan.hosts).toEqual([
      { id: 'h1', url: 'http://198.18.0.11:8475/v1/status' },
      { id: 'h2', url: 'http://198.18.0.12:8475/v1/status' },
    ]);
  });
});
