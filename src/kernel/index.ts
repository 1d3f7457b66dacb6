import { exec } from './exec.js';
import { spawnMonitor, type MonitorFn } from './monitor.js';
import { routeEventFeed } from './route-monitor.js';
import { createIptablesOps, type IptablesOps } from './iptables.js';
import { createFdbOps, type FdbOps } from './fdb.js';
import { createLinkOps, type LinkOps } from './links.js';
import { createNeighOps, type NeighOps } from './neigh.js';
import { createNftOps, type NftOps } from './nft.js';
import { createRouteOps, type ExecFn, type RouteOps } from './routes.js';
import { createSysctl, type ProcFs, type SysctlOps } from './sysctl.js';
import { createVxlanOps, type VxlanOps } from './vxlan.js';

export { TWILL_ROUTE_PROTO } from './routes.js';
export type { Feed, FeedHandlers, FeedStarter, MonitorFn } from './monitor.js';
export { inMainTable, parseKernelEvent, type KernelEvent } from './route-monitor.js';
export type { BatchFailure, BatchResult, ExecFn, KernelRoute, RouteChange, RouteLookup, RouteOps } from './routes.js';
export type { IptablesOps } from './iptables.js';
export type { LinkInfo, LinkOps } from './links.js';
export type { FdbChange, FdbEntry, FdbFailure, FdbOps } from './fdb.js';
export type { NeighChange, Neighbour, NeighbourState, NeighFailure, NeighOps } from './neigh.js';
export { KERNEL_VXLAN_PORT, vxlanIncompat, type VxlanLink, type VxlanOps, type VxlanSpec } from './vxlan.js';
export type { NftOps } from './nft.js';
export type { ProcFs, SysctlOps } from './sysctl.js';

/** The kernel state twill changes, bound to one network namespace (or the agent's own). */
export interface Kernel {
  /** The namespace every command runs in; undefined = the namespace twill runs in. */
  readonly netns: string | undefined;
  readonly routes: RouteOps;
  readonly links: LinkOps;
  /** Permanent neighbours (static ARP), FDB entries and VXLAN devices (the vxlan backend). */
  readonly neigh: NeighOps;
  readonly fdb: FdbOps;
  readonly vxlan: VxlanOps;
  readonly sysctl: SysctlOps;
  readonly nft: NftOps;
  readonly iptables: IptablesOps;
}

export interface KernelOptions {
  readonly netns?: string;
  /** Replaces exec() (unit tests feed canned ip output). */
  readonly exec?: ExecFn;
  /** Replaces the long-lived monitors (`ip monitor`, `nft monitor`); without it, an injected exec means none. */
  readonly monitor?: MonitorFn;
  /** Replaces /proc/sys access when no netns is set (unit tests). */
  readonly procFs?: ProcFs;
}

export function createKernel(opts: KernelOptions = {}): Kernel {
  const run = opts.exec ?? exec;
  const monitor = opts.monitor ?? (opts.exec ? undefined : spawnMonitor);
  return {
    netns: opts.netns,
    routes: { ...createRouteOps(run, opts.netns), ...(monitor ? { events: routeEventFeed(monitor, opts.netns) } : {}) },
    links: createLinkOps(run, opts.netns),
    neigh: createNeighOps(run, opts.netns),
    fdb: createFdbOps(run, opts.netns),
    vxlan: createVxlanOps(run, opts.netns),
    sysctl: createSysctl(run, opts.netns, opts.procFs),
    nft: createNftOps(run, opts.netns, monitor),
    iptables: createIptablesOps(run, opts.netns),
  };
}
