import { describe, expect, it } from 'vitest';
import { callsForPass } from '../../src/backend/vxlan/kernel-events.js';
import { planVxlan, type PlanInput } from '../../src/backend/vxlan/plan.js';
import type { VxlanPeer } from '../../src/backend/vxlan/vtep.js';
import type { KernelRoute } from '../../src/kernel/index.js';

const B: VxlanPeer = { subnet: '10.244.2.0/24', publicIP: '198.18.0.12', vtepMac: '0a:00:00:00:00:02', gateway: '10.244.2.0' };
const C: VxlanPeer = { subnet: '10.244.3.0/24', publicIP: '198.19.0.13', vtepMac: '0a:00:00:00:00:03', gateway: '10.244.3.0' };
const EMPTY = { neighbours: [], fdb: [], routes: [] };
const onLink = new Map([['198.18.0.12', { onLink: true } as const], ['198.19.0.13', { onLink: false, reason: 'PublicIP is reached via gateway 198.18.0.1' } as const]]);

function input(over: Partial<PlanInput> = {}): PlanInput {
  return { peers: [B, C], device: 'flannel.1', iface: 'eth0', directRouting: false, verdict: (ip) => onLink.get(ip), proto: 116, kernel: EMPTY, ...over };
}

const tunnelOf = (p: VxlanPeer) => ({
  neigh: { op: 'replace', ip: p.gateway, mac: p.vtepMac, dev: 'flannel.1' },
  fdb: { op: 'replace', mac: p.vtepMac, dst: p.publicIP, dev: 'flannel.1' },
  route: { op: 'replace', dst: p.subnet, gateway: p.gateway, dev: 'flannel.1', proto: 116, onlink: true },
});
const routeOf = (r: { op: string; dst: string; gateway?: string; dev?: string }): KernelRoute => ({ dst: r.dst, gateway: r.gateway!, dev: r.dev!, proto: 116 });

describe('vxlan plan', () => {
  it('gives every peer a neighbour, an FDB entry and an onlink route through the device', () => {
    const plan = planVxlan(input());
    expect(plan.neigh).toEqual([tunnelOf(B).neigh, tunnelOf(C).neigh]);
    expect(plan.fdb).toEqual([tunnelOf(B).fdb, tunnelOf(C).fdb]);
    expect(plan.routes).toEqual([tunnelOf(B).route, tunnelOf(C).route]);
    expect([...plan.via]).toEqual([['10.244.2.0/24', 'vxlan'], ['10.244.3.0/24', 'vxlan']]);
  });

  it('with DirectRouting, a peer on our L2 segment gets one route via its PublicIP and no neighbour or FDB entry', () => {
    const plan = planVxlan(input({ directRouting: true }));
    expect(plan.neigh).toEqual([tunnelOf(C).neigh]);
    expect(plan.fdb).toEqual([tunnelOf(C).fdb]);
    expect(plan.routes).toEqual([{ op: 'replace', dst: B.subnet, gateway: B.publicIP, dev: 'eth0', proto: 116 }, tunnelOf(C).route]);
    expect(plan.via.get(B.subnet)).toBe('direct');
    expect(plan.via.get(C.subnet)).toBe('vxlan');
    // Not judged yet: the tunnel, which works either way.
    expect(planVxlan(input({ directRouting: true, verdict: () => undefined })).via.get(B.subnet)).toBe('vxlan');
  });

  it('changes nothing when the kernel already holds the plan', () => {
    const t = [tunnelOf(B), tunnelOf(C)];
    const kernel = { neighbours: t.map((x) => ({ ip: x.neigh.ip, mac: x.neigh.mac })), fdb: t.map((x) => ({ mac: x.fdb.mac, dst: x.fdb.dst })), routes: t.map((x) => routeOf(x.route)) };
    const plan = planVxlan(input({ kernel }));
    expect([plan.neigh, plan.fdb, plan.routes]).toEqual([[], [], []]);
  });

  it('puts back what is missing and removes what no peer wants (a peer gone, a peer moved)', () => {
    const moved = { ...B, publicIP: '198.18.0.22' };
    const kernel = {
      neighbours: [{ ip: B.gateway, mac: B.vtepMac }, { ip: '10.244.9.0', mac: '0a:00:00:00:00:09' }],
      fdb: [{ mac: B.vtepMac, dst: B.publicIP }, { mac: '0a:00:00:00:00:09', dst: '198.18.0.19' }],
      routes: [routeOf(tunnelOf(B).route), { dst: '10.244.9.0/24', gateway: '10.244.9.0', dev: 'flannel.1', proto: 116 }],
    };
    const plan = planVxlan(input({ peers: [moved], kernel }));
    expect(plan.neigh).toEqual([{ op: 'delete', ip: '10.244.9.0', dev: 'flannel.1' }]);
    expect(plan.fdb).toEqual([
      { op: 'delete', mac: B.vtepMac, dst: B.publicIP, dev: 'flannel.1' },
      { op: 'delete', mac: '0a:00:00:00:00:09', dst: '198.18.0.19', dev: 'flannel.1' },
      { op: 'replace', mac: B.vtepMac, dst: '198.18.0.22', dev: 'flannel.1' },
    ]);
    expect(plan.routes).toEqual([{ op: 'delete', dst: '10.244.9.0/24', proto: 116 }]);
  });

  it('moves a peer from the tunnel to the direct route (and back) when its verdict changes', () => {
    const t = tunnelOf(B);
    const kernel = { neighbours: [{ ip: B.gateway, mac: B.vtepMac }], fdb: [{ mac: B.vtepMac, dst: B.publicIP }], routes: [routeOf(t.route)] };
    const plan = planVxlan(input({ peers: [B], directRouting: true, kernel }));
    expect(plan.neigh).toEqual([{ op: 'delete', ip: B.gateway, dev: 'flannel.1' }]);
    expect(plan.fdb).toEqual([{ op: 'delete', mac: B.vtepMac, dst: B.publicIP, dev: 'flannel.1' }]);
    expect(plan.routes).toEqual([{ op: 'replace', dst: B.subnet, gateway: B.publicIP, dev: 'eth0', proto: 116 }]);
    const back = planVxlan(input({ peers: [B], kernel: { ...EMPTY, routes: [{ dst: B.subnet, gateway: B.publicIP, dev: 'eth0', proto: 116 }] } }));
    expect(back.routes).toEqual([t.route]);
  });

  it('refuses a second PublicIP claiming a MAC another peer owns', () => {
    const thief = { ...C, vtepMac: B.vtepMac };
    const plan = planVxlan(input({ peers: [thief, B] }));
    expect(plan.fdb).toEqual([tunnelOf(B).fdb]);
    expect(plan.conflicts.get(C.subnet)).toContain('already 10.244.2.0/24');
    expect(plan.via.has(C.subnet)).toBe(false);
  });
});

describe('vxlan kernel events', () => {
  const w = { device: 'flannel.1', iface: 'eth0', proto: 116, directRouting: false };
  const route = (deleted: boolean, proto: number, dst = '10.244.2.0/24') => ({ kind: 'route', deleted, table: 254, route: { dst, gateway: '10.244.2.0', dev: 'flannel.1', proto } }) as const;

  it('calls for a pass when our device or the underlay changes, or a route of ours is deleted', () => {
    expect(callsForPass({ kind: 'device', deleted: true, dev: 'flannel.1' }, w)).toBe(true);
    expect(callsForPass({ kind: 'device', deleted: false, dev: 'eth0' }, w)).toBe(true);
    expect(callsForPass({ kind: 'device', deleted: false, dev: 'veth1234' }, w)).toBe(false);
    expect(callsForPass(route(true, 116), w)).toBe(true);
    expect(callsForPass(route(false, 116), w)).toBe(false); // our own addition echoing back
    expect(callsForPass(route(false, 2, '198.18.0.0/24'), w)).toBe(false);
    expect(callsForPass(route(false, 2, '198.18.0.0/24'), { ...w, directRouting: true })).toBe(true); // an L2 verdict may move
    expect(callsForPass({ kind: 'route', deleted: true, table: 255, route: { dst: '10.244.1.0/32', proto: 2 } }, { ...w, directRouting: true })).toBe(false);
  });
});
