/**
 * Convergence: how long after a new host's lease appears in etcd every other host has programmed
 * it. The lab has no spare host to add, so a join is simulated: a lease for an unused subnet,
 * with an unused underlay address as PublicIP, is written straight into etcd (what a new agent
 * would write). A helper program in the etcd namespace (../scripts/join-timer.ts) takes the
 * time just before the put, then polls every agent's /v1/status until each lists the peer as
 * `programmed` (host-gw: its route is in the kernel; udp: it is in the tunnel's peer table). A
 * host's time is the peer's `since` (the agent's own clock, same machine) minus the time of the
 * put. The key is deleted and every agent has forgotten the peer before the next join.
 */
import { fileURLToPath } from 'node:url';
import { nodeScriptInNetns } from '../kernel/node-script.js';
import type { JoinPlan } from '../scripts/join-timer.js';
import type { LabState } from '../lab/state.js';
import { agentStatusAddr } from '../lab/prometheus.js';
import { formatLeaseValue, subnetsPrefix } from '../../subnet/lease-format.js';
import type { LeaseAttrs } from '../../subnet/types.js';
import { backendFactory } from '../../backend/index.js';
import type { JoinSample } from './results.js';

export type { JoinPlan } from '../scripts/join-timer.js';

export const CONVERGENCE_METHOD = 'lease put into etcd (v3 HTTP gateway) → peer "programmed" in every agent\'s /v1/status (its `since`)';
const ETCD_PREFIX = '/coreos.com/network';
/** An address on segment A no lab node uses (hosts are .11 and up, at most 50). */
const JOIN_HOST_PART = 200;
const POLL_MS = 10;
const JOIN_TIMEOUT_MS = 15_000;

// From src/tools/bench and dist/tools/bench alike: the built program, never the TypeScript.
export const JOIN_TIMER_PROGRAM = fileURLToPath(new URL('../../../dist/tools/scripts/join-timer.main.js', import.meta.url));

/** Pure: the join's key, value and targets; the subnet is the highest /24 of the lab network no host holds. */
export function planJoins(state: Pick<LabState, 'etcd' | 'hosts' | 'options'>, joins: number): JoinPlan {
  const taken = new Set(state.hosts.map((h) => h.subnet));
  let third = 254;
  while (taken.has(`10.244.${third}.0/24`)) third--;
  const subnet = `10.244.${third}.0/24`;
  const publicIP = state.etcd.endpoint.replace(/^http:\/\/(\d+\.\d+\.\d+)\.\d+:\d+$/, `$1.${JOIN_HOST_PART}`);
  return {
    etcd: state.etcd.endpoint,
    key: `${subnetsPrefix(ETCD_PREFIX)}10.244.${third}.0-24`,
    value: formatLeaseValue(leaseAttrs(state.options.backend, publicIP)),
    subnet,
    hosts: state.hosts.map((h) => ({ id: h.id, url: `http://${agentStatusAddr(h)}/v1/status` })),
    joins,
    pollMs: POLL_MS,
    timeoutMs: JOIN_TIMEOUT_MS,
  };
}

/** Deletes the simulated lease (after an interrupted or failed measurement in a lab that stays up). */
export async function removeJoinLease(state: LabState): Promise<void> {
  const plan = { ...planJoins(state, 0), cleanup: true };
  await nodeScriptInNetns({ ns: state.etcd.ns, file: JOIN_TIMER_PROGRAM, args: [JSON.stringify(plan)], timeoutMs: 15_000 });
}

export async function measureJoins(state: LabState, joins: number, signal?: AbortSignal): Promise<JoinSample[]> {
  const plan = planJoins(state, joins);
  const out = await nodeScriptInNetns({ ns: state.etcd.ns, file: JOIN_TIMER_PROGRAM, args: [JSON.stringify(plan)], timeoutMs: joins * 2 * JOIN_TIMEOUT_MS + 10_000, signal });
  return JSON.parse(out) as JoinSample[];
}

/** The lease a node of this backend publishes (the lab's config sets only Backend.Type). */
function leaseAttrs(type: string, publicIP: string): LeaseAttrs {
  const factory = backendFactory(type);
  return factory.leaseAttrs(publicIP, factory.parseOptions({ Type: type }));
}
