import { describe, expect, it } from 'vitest';
import { allReachable, renderMatrix, type PingResult } from '../../src/tools/lab/render.js';
import { renderTable } from '../../src/lib/text-table.js';
import type { LabState } from '../../src/tools/lab/state.js';
import { renderStatus, type LabStatus } from '../../src/tools/lab/status.js';
import { planUnderlay } from '../../src/tools/lab/underlay.js';
import { runningStatus, startingStatus } from '../support/status.js';

const pods = ['h1-p1', 'h2-p1', 'h3-p1'];

function results(failing: ReadonlyArray<readonly [string, string]> = []): PingResult[] {
  return pods.flatMap((from) =>
    pods
      .filter((to) => to !== from)
      .map((to) => {
        const ok = !failing.some(([f, t]) => f === from && t === to);
        return { from, to, ok, detail: ok ? '' : '100% packet loss' };
      }),
  );
}

describe('lab check matrix', () => {
  it('renders rows as sources and columns as destinations', () => {
    expect(renderMatrix(pods, results([['h2-p1', 'h3-p1']]))).toBe(
      [
        'from\\to h1-p1   h2-p1   h3-p1',
        'h1-p1   ·       ✓       ✓',
        'h2-p1   ✓       ·       ✗',
        'h3-p1   ✓       ✓       ·',
        '',
        '5/6 reachable',
        'FAIL h2-p1 -> h3-p1: 100% packet loss',
        '',
      ].join('\n'),
    );
  });

  it('counts a pair with no result as a failure', () => {
    const partial = results().filter((r) => !(r.from === 'h1-p1' && r.to === 'h3-p1'));
    expect(renderMatrix(pods, partial).split('\n')[1]).toMatch(/✓\s+✗$/);
  });

  it('is all reachable only without failures', () => {
    expect(allReachable(results())).toBe(true);
    expect(allReachable(results([['h1-p1', 'h2-p1']]))).toBe(false);
    expect(renderMatrix(pods, results())).toContain('6/6 reachable\n');
  });

  it('pads table columns', () => {
    expect(renderTable(['A', 'BB'], [['xyz', '1'], ['q', '']])).toBe('A    BB\nxyz  1\nq\n');
  });
});

describe('lab status rendering', () => {
  const state: LabState = {
    version: 1,
    phase: 'up',
    options: { name: 'x', hosts: 2, podsPerHost: 1, backend: 'host-gw', topology: 'flat', dir: '/tmp/twill-lab/x' },
    etcd: { ns: 'twl-x-etcd', endpoint: 'http://198.18.0.2:2379', members: [{ name: 'etcd1', endpoint: 'http://198.18.0.2:2379', pid: 10 }] },
    prometheus: null,
    hosts: [
      { id: 'h1', ns: 'twl-x-h1', ip: '198.18.0.11', segment: 'A', pid: 11, subnet: '10.244.3.0/24' },
      { id: 'h2', ns: 'twl-x-h2', ip: '198.18.0.12', segment: 'A', pid: 12, subnet: null },
    ],
    pods: [
      { id: 'h1-p1', host: 'h1', ns: 'twl-x-h1-p1', ip: '10.244.3.2' },
      { id: 'h2-p1', host: 'h2', ns: 'twl-x-h2-p1', ip: null },
    ],
  };
  const status: LabStatus = {
    state,
    underlay: planUnderlay('x', 'flat'),
    etcd: [{ name: 'etcd1', endpoint: 'http://198.18.0.2:2379', pid: 10, alive: true, leads: null }],
    hosts: [
      { id: 'h1', ns: 'twl-x-h1', segment: 'A', ip: '198.18.0.11', subnet: '10.244.3.0/24', agent: { pid: 11, alive: true } },
      { id: 'h2', ns: 'twl-x-h2', segment: 'A', ip: '198.18.0.12', subnet: 'no subnet.env', agent: { pid: 12, alive: false } },
    ],
    agents: [
      {
        host: 'h1',
        addr: '198.18.0.11:8475',
        status: {
          ...runningStatus(),
          peers: [
            { subnet: '10.244.9.0/24', publicIP: '198.18.0.12', backendType: 'host-gw', state: 'programmed', since: 'x' },
            { subnet: '10.244.10.0/24', publicIP: '198.19.0.13', backendType: 'host-gw', state: 'unreachable-on-l2', since: 'x' },
          ],
        },
      },
      { host: 'h2', addr: '198.18.0.12:8475', status: null, error: 'ECONNREFUSED' },
    ],
    prometheus: null,
  };

  it("shows each agent's readiness and peer states from its status API, and where Prometheus is", () => {
    const text = renderStatus(status);
    expect(text).toMatch(/^AGENT\s+STATUS API\s+READY\s+PEERS$/m);
    expect(text).toMatch(/^h1\s+198\.18\.0\.11:8475\s+ready\s+h2 programmed, 10\.244\.10\.0\/24 unreachable-on-l2$/m);
    expect(text).toMatch(/^h2\s+198\.18\.0\.12:8475\s+unreachable \(ECONNREFUSED\)\s+-$/m);
    expect(text).not.toContain('prometheus');
    const notReady = { ...status.agents[0]!, status: { ...startingStatus(), peers: [] } };
    const withProm = renderStatus({ ...status, agents: [notReady], prometheus: { url: 'http://198.18.0.2:9090', pid: 13, alive: true } });
    expect(withProm).toContain('prometheus http://198.18.0.2:9090 pid 13 alive');
    expect(withProm).toMatch(/^h1\s+198\.18\.0\.11:8475\s+NOT READY \(lease, backend, subnet-file\)\s+none$/m);
  });

  it('shows hosts, agents, pods and where the files are', () => {
    const text = renderStatus(status);
    expect(text).toContain('lab x (up, backend host-gw, topology flat)');
    expect(text).toContain('underlay flat\n  segment A 198.18.0.0/24 (twl-x-ul, bridge br0), gateway 198.18.0.1 on br0\n');
    expect(text).toContain('etcd twl-x-etcd http://198.18.0.2:2379 pid 10 alive');
    expect(text).toMatch(/^HOST\s+NAMESPACE\s+SEGMENT\s+UNDERLAY\s+SUBNET\s+AGENT$/m);
    expect(text).toMatch(/h1\s+twl-x-h1\s+A\s+198\.18\.0\.11\s+10\.244\.3\.0\/24\s+pid 11 alive/);
    expect(text).toMatch(/h2\s+twl-x-h2\s+A\s+198\.18\.0\.12\s+no subnet\.env\s+pid 12 DEAD/);
    expect(text).toMatch(/h2-p1\s+twl-x-h2-p1\s+-/);
    expect(text).toContain('/tmp/twill-lab/x/state.json');
  });

  it('shows a routed underlay: both segments, the router legs holding the gateways, each host segment', () => {
    const routed: LabStatus = {
      ...status,
      state: { ...state, options: { ...state.options, topology: 'routed' } },
      underlay: planUnderlay('x', 'routed'),
      hosts: [status.hosts[0]!, { ...status.hosts[1]!, segment: 'B', ip: '198.19.0.12' }],
    };
    const text = renderStatus(routed);
    expect(text).toContain('lab x (up, backend host-gw, topology routed)');
    expect(text).toContain(
      [
        'underlay routed, router twl-x-rt',
        '  segment A 198.18.0.0/24 (twl-x-ul, bridge br0), gateway 198.18.0.1 on twl-x-rt eth0',
        '  segment B 198.19.0.0/24 (twl-x-ul2, bridge br0), gateway 198.19.0.1 on twl-x-rt eth1',
      ].join('\n'),
    );
    expect(text).toMatch(/h2\s+twl-x-h2\s+B\s+198\.19\.0\.12\s/);
  });
});
