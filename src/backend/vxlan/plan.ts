/**
 * The pure core of vxlan: from the peers, their L2 verdicts and what the kernel holds now, the
 * neighbour, FDB and route changes, and how each peer is reached. No I/O (style rule 7).
 */
import type { FdbChange, FdbEntry, KernelRoute, NeighChange, Neighbour, RouteChange } from '../../kernel/index.js';
import type { L2Verdict } from '../shared/l2-verdict.js';
import { planRoutes, type DesiredRoute } from '../shared/route-diff.js';
import type { VxlanPeer } from './vtep.js';

export type Via = 'direct' | 'vxlan';

/** What the kernel holds now: the device's permanent neighbours and FDB entries, and the routes with our protocol. */
export interface KernelView {
  readonly neighbours: readonly Neighbour[];
  readonly fdb: readonly FdbEntry[];
  readonly routes: readonly KernelRoute[];
}

export interface PlanInput {
  readonly peers: readonly VxlanPeer[];
  /** `flannel.<VNI>` */
  readonly device: string;
  /** The underlay interface (direct routes). */
  readonly iface: string;
  readonly directRouting: boolean;
  /** The L2 verdict of a PublicIP (looked up only with DirectRouting); none means the tunnel. */
  readonly verdict: (publicIP: string) => L2Verdict | undefined;
  readonly proto: number;
  readonly kernel: KernelView;
}

export interface VxlanPlan {
  readonly neigh: readonly NeighChange[];
  readonly fdb: readonly FdbChange[];
  readonly routes: readonly RouteChange[];
  /** How each planned peer is reached, by subnet. */
  readonly via: ReadonlyMap<string, Via>;
  /** Peers that cannot be programmed, by subnet: why. */
  readonly conflicts: ReadonlyMap<string, string>;
}

interface Desired {
  readonly neighbours: Map<string, string>;
  readonly fdb: Map<string, string>;
  readonly routes: DesiredRoute[];
  readonly via: Map<string, Via>;
  readonly conflicts: Map<string, string>;
}

/** Per peer: on our L2 segment with DirectRouting, one route via its PublicIP; else neighbour, FDB entry and an onlink route. */
export function desiredState(input: Omit<PlanInput, 'kernel'>): Desired {
  const d: Desired = { neighbours: new Map(), fdb: new Map(), routes: [], via: new Map(), conflicts: new Map() };
  const owners = new Map<string, VxlanPeer>();
  for (const p of [...input.peers].sort((a, b) => a.subnet.localeCompare(b.subnet))) {
    if (input.directRouting && input.verdict(p.publicIP)?.onLink === true) {
      d.routes.push({ dst: p.subnet, gateway: p.publicIP, dev: input.iface });
      d.via.set(p.subnet, 'direct');
      continue;
    }
    // One MAC has one VTEP: a second PublicIP claiming it would steal the first one's traffic.
    const owner = owners.get(p.vtepMac);
    if (owner && owner.publicIP !== p.publicIP) {
      d.conflicts.set(p.subnet, `VtepMAC ${p.vtepMac} is already ${owner.subnet}'s (PublicIP ${owner.publicIP})`);
      continue;
    }
    owners.set(p.vtepMac, p);
    d.neighbours.set(p.gateway, p.vtepMac);
    d.fdb.set(p.vtepMac, p.publicIP);
    d.routes.push({ dst: p.subnet, gateway: p.gateway, dev: input.device, onlink: true });
    d.via.set(p.subnet, 'vxlan');
  }
  return d;
}

/** Everything missing or different is replaced; everything of ours that no peer wants goes. */
export function planVxlan(input: PlanInput): VxlanPlan {
  const want = desiredState(input);
  const { device, kernel } = input;
  const neigh: NeighChange[] = [];
  const haveNeigh = new Map(kernel.neighbours.map((n) => [n.ip, n.mac]));
  for (const [ip, mac] of want.neighbours) if (haveNeigh.get(ip) !== mac) neigh.push({ op: 'replace', ip, mac, dev: device });
  for (const ip of haveNeigh.keys()) if (!want.neighbours.has(ip)) neigh.push({ op: 'delete', ip, dev: device });
  const fdb: FdbChange[] = [];
  // Deletes first: a MAC that moved to another PublicIP loses its old entry before it gets the new one.
  for (const e of kernel.fdb) if (want.fdb.get(e.mac) !== e.dst) fdb.push({ op: 'delete', mac: e.mac, dst: e.dst, dev: device });
  const haveFdb = new Set(kernel.fdb.map((e) => `${e.mac} ${e.dst}`));
  for (const [mac, dst] of want.fdb) if (!haveFdb.has(`${mac} ${dst}`)) fdb.push({ op: 'replace', mac, dst, dev: device });
  const routes = planRoutes(want.routes, kernel.routes, input.proto);
  return { neigh, fdb, routes, via: want.via, conflicts: want.conflicts };
}
