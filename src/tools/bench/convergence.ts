/**
 * Convergence: how long after a new host's lease appears in etcd every other host has programmed
 * it. The lab has no spare host to add, so a join is simulated: a lease for an unused subnet,
 * with an unused underlay address as PublicIP, is written straight into etcd (what a new agent
 * would write). A helper in the etcd namespace takes the time just before the put, then polls
 * every agent's /v1/status until each lists the peer as `programmed` (host-gw: its route is in
 * the kernel; udp: it is in the tunnel's peer table). A host's time is the peer's `since` (the
 * agent's own clock, same machine) minus the time of the put. The key is deleted and every
 * agent has forgotten the peer before the next join.
 */
import { nodeScriptInNetns } from '../kernel/node-script.js';
import type { LabState } from '../lab/state.js';
import { agentStatusAddr } from '../lab/prometheus.js';
import { formatLeaseValue, subnetsPrefix } from '../../subnet/lease-format.js';
import type { JoinSample } from './results.js';

export const CONVERGENCE_METHOD = 'lease put into etcd (v3 HTTP gateway) → peer "programmed" in every agent\'s /v1/status (its `since`)';
const ETCD_PREFIX = '/coreos.com/network';
/** An address on segment A no lab node uses (hosts are .11 and up, at most 50). */
const JOIN_HOST_PART = 200;
const POLL_MS = 10;
const JOIN_TIMEOUT_MS = 15_000;

export interface JoinPlan {
  readonly etcd: string;
  readonly key: string;
  readonly value: string;
  readonly subnet: string;
  readonly hosts: readonly { readonly id: string; readonly url: string }[];
  readonly joins: number;
  readonly pollMs: number;
  readonly timeoutMs: number;
}

// Runs in the etcd namespace; prints [{ hostsMs: { h1: 12, ... } }, ...].
const SCRIPT = `const cfg = JSON.parse(process.argv[1]);
const b64 = (s) => Buffer.from(s).toString('base64');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function etcd(path, body) {
  const r = await fetch(cfg.etcd + path, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(5000) });
  if (!r.ok) throw new Error('etcd ' + path + ': HTTP ' + r.status + ' ' + (await r.text()));
}
async function peer(url) {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return (await r.json()).peers.find((p) => p.subnet === cfg.subnet) ?? null;
  } catch { return undefined; }
}
async function waitAll(done, deadline, what) {
  const seen = new Map();
  while (seen.size < cfg.hosts.length) {
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what + ' on ' + cfg.hosts.filter((h) => !seen.has(h.id)).map((h) => h.id).join(', '));
    await Promise.all(cfg.hosts.filter((h) => !seen.has(h.id)).map(async (h) => {
      const p = await peer(h.url);
      if (done(p)) seen.set(h.id, { p, at: Date.now() });
    }));
    await sleep(cfg.pollMs);
  }
  return seen;
}
(async () => {
  if (cfg.cleanup) return etcd('/v3/kv/deleterange', { key: b64(cfg.key) });
  // Warm-up, not timed: etcd's HTTP gateway dials its own gRPC on first use; fetch and the agents' APIs warm up too.
  await fetch(cfg.etcd + '/v3/kv/range', { method: 'POST', body: JSON.stringify({ key: b64(cfg.key) }), signal: AbortSignal.timeout(5000) });
  await Promise.all(cfg.hosts.map((h) => peer(h.url)));
  const out = [];
  for (let i = 0; i < cfg.joins; i++) {
    const t0 = Date.now();
    await etcd('/v3/kv/put', { key: b64(cfg.key), value: b64(cfg.value) });
    const seen = await waitAll((p) => p && p.state === 'programmed', t0 + cfg.timeoutMs, 'the new peer');
    const hostsMs = {};
    for (const [id, { p, at }] of seen) {
      const since = Date.parse(p.since);
      hostsMs[id] = since >= t0 && since <= at ? since - t0 : at - t0;
    }
    out.push({ hostsMs });
    await etcd('/v3/kv/deleterange', { key: b64(cfg.key) });
    await waitAll((p) => p === null, Date.now() + cfg.timeoutMs, 'the peer to be forgotten');
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { process.stderr.write(String(e && e.message || e) + '\\n'); process.exit(1); });`;

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
    value: formatLeaseValue({ publicIP, publicIPv6: null, backendType: state.options.backend }),
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
  await nodeScriptInNetns({ ns: state.etcd.ns, script: SCRIPT, args: [JSON.stringify(plan)], timeoutMs: 15_000 });
}

export async function measureJoins(state: LabState, joins: number, signal?: AbortSignal): Promise<JoinSample[]> {
  const plan = planJoins(state, joins);
  const out = await nodeScriptInNetns({ ns: state.etcd.ns, script: SCRIPT, args: [JSON.stringify(plan)], timeoutMs: joins * 2 * JOIN_TIMEOUT_MS + 10_000, signal });
  return JSON.parse(out) as JoinSample[];
}
