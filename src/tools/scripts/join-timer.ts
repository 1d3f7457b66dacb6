/**
 * The bench's convergence timer, run as its own program (join-timer.main.ts) in the lab's etcd
 * namespace, where etcd and every agent's API are reachable: ../bench/convergence.ts plans the
 * joins and starts it with `ip netns exec`. For each join it takes the time just before it puts
 * the lease into etcd (v3 HTTP gateway), polls every agent's /v1/status until each lists the
 * peer as `programmed`, then deletes the key and waits until every agent has forgotten the peer.
 * Nothing but fetch, so that the program starts fast.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { PeerStatus } from '../../status/types.js';
import type { JoinSample } from '../bench/results.js';

export interface JoinPlan {
  /** etcd's client URL (its v3 HTTP gateway). */
  readonly etcd: string;
  readonly key: string;
  readonly value: string;
  readonly subnet: string;
  readonly hosts: readonly { readonly id: string; readonly url: string }[];
  readonly joins: number;
  readonly pollMs: number;
  readonly timeoutMs: number;
  /** Only delete the key (after an interrupted or failed measurement); time nothing. */
  readonly cleanup?: boolean;
}

type Peer = Pick<PeerStatus, 'subnet' | 'state' | 'since'>;
/** The new peer as one agent lists it: null when not listed, undefined when the API did not answer. */
type Lookup = Peer | null | undefined;

const ETCD_TIMEOUT_MS = 5000;
const STATUS_TIMEOUT_MS = 2000;

const b64 = (s: string): string => Buffer.from(s).toString('base64');

async function etcd(plan: JoinPlan, path: string, body: object): Promise<void> {
  const r = await fetch(plan.etcd + path, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(ETCD_TIMEOUT_MS) });
  if (!r.ok) throw new Error(`etcd ${path}: HTTP ${r.status} ${await r.text()}`);
}

async function peer(plan: JoinPlan, url: string): Promise<Lookup> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(STATUS_TIMEOUT_MS) });
    return ((await r.json()) as { peers: readonly Peer[] }).peers.find((p) => p.subnet === plan.subnet) ?? null;
  } catch {
    return undefined;
  }
}

/** Polls every host until `done` holds for its lookup; returns each host's lookup and when it was seen. */
async function waitAll(plan: JoinPlan, done: (p: Lookup) => boolean, deadline: number, what: string): Promise<Map<string, { p: Lookup; at: number }>> {
  const seen = new Map<string, { p: Lookup; at: number }>();
  while (seen.size < plan.hosts.length) {
    const left = plan.hosts.filter((h) => !seen.has(h.id));
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} on ${left.map((h) => h.id).join(', ')}`);
    await Promise.all(
      left.map(async (h) => {
        const p = await peer(plan, h.url);
        if (done(p)) seen.set(h.id, { p, at: Date.now() });
      }),
    );
    await sleep(plan.pollMs);
  }
  return seen;
}

/** Deletes the simulated lease. */
export async function removeJoinKey(plan: JoinPlan): Promise<void> {
  await etcd(plan, '/v3/kv/deleterange', { key: b64(plan.key) });
}

/**
 * Times `plan.joins` joins, one after the other. A host's time is the peer's `since` (the
 * agent's own clock, same machine) minus the time of the put, or when it was seen programmed
 * if `since` falls outside that window.
 */
export async function timeJoins(plan: JoinPlan): Promise<JoinSample[]> {
  // Warm-up, not timed: etcd's HTTP gateway dials its own gRPC on first use; fetch and the agents' APIs warm up too.
  await fetch(plan.etcd + '/v3/kv/range', { method: 'POST', body: JSON.stringify({ key: b64(plan.key) }), signal: AbortSignal.timeout(ETCD_TIMEOUT_MS) });
  await Promise.all(plan.hosts.map((h) => peer(plan, h.url)));
  const out: JoinSample[] = [];
  for (let i = 0; i < plan.joins; i++) {
    const t0 = Date.now();
    await etcd(plan, '/v3/kv/put', { key: b64(plan.key), value: b64(plan.value) });
    const seen = await waitAll(plan, (p) => p?.state === 'programmed', t0 + plan.timeoutMs, 'the new peer');
    const hostsMs: Record<string, number> = {};
    for (const [id, { p, at }] of seen) {
      const since = p ? Date.parse(p.since) : NaN;
      hostsMs[id] = since >= t0 && since <= at ? since - t0 : at - t0;
    }
    out.push({ hostsMs });
    await removeJoinKey(plan);
    await waitAll(plan, (p) => p === null, Date.now() + plan.timeoutMs, 'the peer to be forgotten');
  }
  return out;
}

/** What the program does: the samples to print, or null after a cleanup (which prints nothing). */
export async function runJoinTimer(plan: JoinPlan): Promise<JoinSample[] | null> {
  if (plan.cleanup) {
    await removeJoinKey(plan);
    return null;
  }
  return timeJoins(plan);
}
