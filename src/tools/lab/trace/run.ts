import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CNI_BRIDGE } from '../../../agent/cni-conflist.js';
import { exec } from '../../../kernel/exec.js';
import type { PathTrace } from '../../../trace/path.js';
import { startCapture, type Capture } from '../../kernel/capture.js';
import { httpGetInNetns } from '../../kernel/http.js';
import { routeGetDev, vethPeerName } from '../../kernel/netns.js';
import { agentStatusAddr } from '../prometheus.js';
import { planOf, type LabState } from '../state.js';
import type { LabPlan } from '../topology.js';
import { decodePcap } from './decode.js';
import { captureFilter, planHops, resolveSource, resolveTarget, type HopSpec, type PathFacts, type Source, type Target } from './hops.js';
import { innermostSource } from './masquerade.js';
import type { Hop, LabTrace } from './types.js';

export interface LabTraceOptions {
  /** How long the captures wait after the ping has answered or given up (default 500 ms). */
  readonly settleMs?: number;
}

const ICMP_AND_IP_HEADERS = 28;
const PING_WAIT_S = 2;

/**
 * `twill lab trace FROM TO`: a capture on every interface the packet should cross, all listening
 * before one ping is sent from the source pod; then each hop's packet decoded, the first hop
 * that saw nothing marked as where it was lost, and the source agent's own account added.
 */
export async function runLabTrace(state: LabState, from: string, to: string, opts: LabTraceOptions = {}): Promise<LabTrace> {
  const plan = planOf(state);
  const src = resolveSource(state, plan, from);
  const dst = resolveTarget(state, plan, to);
  const specs = planHops(plan, src, dst, await pathFacts(src, dst, plan.hosts));
  // An unusual size marks our packet: ping -s N makes an IPv4 packet of N + 28 bytes.
  const size = randomInt(300, 1000);
  const captures = specs.map((h) => startCapture({ ns: h.ns, dev: h.dev, filter: captureFilter(size + ICMP_AND_IP_HEADERS) }));
  let hops: Hop[];
  try {
    const listening = await Promise.allSettled(captures.map((c) => c.ready));
    await exec('ping', ['-c', '1', '-W', String(PING_WAIT_S), '-s', String(size), dst.ip], { netns: src.pod.ns, allowFailure: true, timeoutMs: 10_000 });
    hops = await collect(specs, captures, listening, opts.settleMs ?? 500);
  } finally {
    for (const c of captures) c.stop();
  }
  const lostAt = hops.find((h) => h.packet === null)?.id ?? null;
  const masqueradedTo = innermostSource(hops, src.ip);
  const chain = await agentChain(state, src, dst.ip);
  return { lab: plan.name, backend: plan.backend, from: { id: src.pod.id, ip: src.ip }, to: { id: dst.id, ip: dst.ip }, hops, lostAt, chain, masqueradedTo, complete: lostAt === null };
}

async function pathFacts(src: Source, dst: Target, hosts: LabPlan['hosts']): Promise<PathFacts> {
  const dstHost = dst.kind === 'pod' ? hosts.find((h) => h.id === dst.pod.host) : undefined;
  const [srcVeth, dstVeth, egressDev] = await Promise.all([
    vethPeerName(src.pod.ns, 'eth0', src.host.ns),
    dst.kind === 'pod' && dstHost ? vethPeerName(dst.pod.ns, 'eth0', dstHost.ns) : null,
    routeGetDev(src.host.ns, dst.ip, src.ip, CNI_BRIDGE),
  ]);
  return { srcVeth: srcVeth ?? '?', dstVeth, egressDev };
}

/** Every capture's packet, waiting at most `settleMs` more once the ping is done. */
async function collect(specs: readonly HopSpec[], captures: readonly Capture[], listening: readonly PromiseSettledResult<void>[], settleMs: number): Promise<Hop[]> {
  const deadline = sleep(settleMs).then(() => null);
  return Promise.all(
    specs.map(async (spec, i) => {
      const l = listening[i];
      if (l?.status === 'rejected') return { ...spec, packet: null, error: (l.reason as Error).message };
      const file = await Promise.race([captures[i]!.packet, deadline]);
      return { ...spec, packet: file === null ? null : decodePcap(file) };
    }),
  );
}

/** The source host's agent's account (GET /v1/trace?dst=&from=), asked from the etcd namespace; null when it did not answer. */
async function agentChain(state: LabState, src: Source, dst: string): Promise<PathTrace | null> {
  const host = state.hosts.find((h) => h.id === src.host.id);
  if (!host) return null;
  const url = `http://${agentStatusAddr(host)}/v1/trace?dst=${encodeURIComponent(dst)}&from=${encodeURIComponent(src.ip)}`;
  const [answer] = await httpGetInNetns(state.etcd.ns, [url]).catch(() => []);
  return answer?.status === 200 ? (JSON.parse(answer.body) as PathTrace) : null;
}
