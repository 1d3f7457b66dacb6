/** A lab's state file as `lab up` leaves it, and a lab trace as `lab trace` returns it, without a lab. */
import type { LabState } from '../../src/tools/lab/state.js';
import type { Hop, HopRole, LabTrace } from '../../src/tools/lab/trace/types.js';

export function labStateFixture(opts: { hosts: number; podsPerHost?: number; topology: 'flat' | 'routed'; backend?: string }): LabState {
  const perHost = opts.podsPerHost ?? 1;
  const hosts = Array.from({ length: opts.hosts }, (_, i) => {
    const n = i + 1;
    const onB = opts.topology === 'routed' && n % 2 === 0;
    return { id: `h${n}`, ns: `twl-t-h${n}`, ip: `198.${onB ? 19 : 18}.0.${10 + n}`, segment: onB ? 'B' : 'A', pid: 100 + n, subnet: `10.244.${n}.0/24` };
  });
  const pods = hosts.flatMap((h, i) => Array.from({ length: perHost }, (_, j) => ({ id: `${h.id}-p${j + 1}`, host: h.id, ns: `twl-t-${h.id}-p${j + 1}`, ip: `10.244.${i + 1}.${j + 2}` })));
  return {
    version: 1,
    phase: 'up',
    options: { name: 't', hosts: opts.hosts, podsPerHost: perHost, backend: opts.backend ?? 'vxlan', topology: opts.topology, dir: '/tmp/twill-lab/t' },
    etcd: { ns: 'twl-t-etcd', endpoint: 'http://198.18.0.2:2379', members: [{ name: 'etcd1', endpoint: 'http://198.18.0.2:2379', pid: 99 }] },
    prometheus: null,
    hosts,
    pods,
  };
}

const hop = (node: string, dev: string, role: HopRole, seen = true): Hop => ({
  id: `${node}:${dev}`,
  node,
  ns: `twl-t-${node}`,
  dev,
  role,
  label: `${node} ${dev}`,
  packet: seen ? { bytes: 148, layers: [{ proto: 'ether', src: '02:00:00:00:00:01', dst: '02:00:00:00:00:02' }], overheadBytes: role === 'underlay' || role === 'router' ? 50 : 0, summary: `${node} ${dev}` } : null,
});

/** h1-p1 → h2-p1 over vxlan through the router of a routed lab; `lostFrom`: the hops from this index on saw nothing. */
export function routedVxlanTrace(lostFrom: number | null = null): LabTrace {
  const path: [string, string, HopRole][] = [
    ['h1-p1', 'eth0', 'pod'],
    ['h1', 'veth1', 'veth'],
    ['h1', 'cni0', 'bridge'],
    ['h1', 'flannel.1', 'tunnel'],
    ['h1', 'eth0', 'underlay'],
    ['rt', 'eth0', 'router'],
    ['rt', 'eth1', 'router'],
    ['h2', 'eth0', 'underlay'],
    ['h2', 'flannel.1', 'tunnel'],
    ['h2', 'cni0', 'bridge'],
    ['h2', 'veth2', 'veth'],
    ['h2-p1', 'eth0', 'pod'],
  ];
  const hops = path.map(([node, dev, role], i) => hop(node, dev, role, lostFrom === null || i < lostFrom));
  const lostAt = hops.find((h) => h.packet === null)?.id ?? null;
  return { lab: 't', backend: 'vxlan', from: { id: 'h1-p1', ip: '10.244.1.2' }, to: { id: 'h2-p1', ip: '10.244.2.2' }, hops, lostAt, chain: null, masqueradedTo: null, complete: lostAt === null };
}
