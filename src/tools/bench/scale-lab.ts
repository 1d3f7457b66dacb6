/**
 * The scale bench's lab for one backend: `labUp` with one host and no pods, its network config
 * with room for 65,000 /24s (SCALE_NETWORK), the peers' segment as a second address on the
 * host's eth0, and the driver (../scripts/scale-driver.ts) running beside the agent. The bench
 * stops and starts the agent itself (a cold start is a fresh agent process with N peers already
 * in etcd and none of its routes in the kernel).
 */
import { fileURLToPath } from 'node:url';
import { backendFactory } from '../../backend/index.js';
import { TWILL_ROUTE_PROTO } from '../../kernel/index.js';
import { TwillError } from '../../errors.js';
import { ipBatch } from '../kernel/netns.js';
import { startNodeSession, type NodeSession } from '../kernel/node-session.js';
import { isAlive, processCpu, processMemory, stopProcess, type ProcessCpu, type ProcessMemory } from '../kernel/process.js';
import { startAgent } from '../lab/agents.js';
import { labDown } from '../lab/down.js';
import { defaultLabDir } from '../lab/naming.js';
import { cliEntry } from '../lab/preflight.js';
import { agentStatusAddr } from '../lab/prometheus.js';
import { planOf, type LabState } from '../lab/state.js';
import { hostFiles, type LabHost, type LabPlan } from '../lab/topology.js';
import { labUp, type LabDeps } from '../lab/up.js';
import type { DriverConfig, DriverReply, DriverRequest, ProgrammedBy } from '../scripts/scale-driver.js';
import { PEER_SEGMENT_HOST, SCALE_NETWORK, type PeerTemplate } from '../scripts/scale-peers.js';
import { waitTimeoutMs } from './scale-plan.js';
import type { BurstTiming, Timing } from './scale-results.js';

// From src/tools/bench and dist/tools/bench alike: the built program, never the TypeScript.
export const SCALE_DRIVER_PROGRAM = fileURLToPath(new URL('../../../dist/tools/scripts/scale-driver.main.js', import.meta.url));

/** Operations per etcd transaction (etcd's default --max-txn-ops), and transactions in flight. */
const TXN_OPS = 128;
const TXN_PARALLEL = 4;
/** Beyond the driver's own deadline: how long the bench waits for an answer before it kills the driver. */
const ANSWER_GRACE_MS = 30_000;
const QUICK_MS = 120_000;

type Ok<O extends DriverRequest['op']> = DriverReply extends infer R ? (R extends { ok: true; op: infer P } ? (O extends P ? R : never) : never) : never;

/** Pure: what the driver needs to know of a backend: its lease fields, and where "programmed" shows. */
export function driverConfig(backend: string, etcd: string, api: string, pollMs: number): DriverConfig {
  const factory = backendFactory(backend);
  const attrs = factory.leaseAttrs('0.0.0.0', factory.parseOptions({ Type: backend }));
  const template: PeerTemplate = { publicIPv6: attrs.publicIPv6, ...(attrs.backendType === undefined ? {} : { backendType: attrs.backendType }), ...(attrs.backendData === undefined ? {} : { backendData: attrs.backendData }) };
  // A backend that carries no packets itself programs the kernel (host-gw: a route per peer);
  // one that does (udp) keeps its peers in memory, and only its API can tell.
  const programmedBy: ProgrammedBy = factory.traits.carriesPackets ? 'agent-api' : 'kernel-routes';
  return { etcd, api, template, programmedBy, pollMs, txnOps: TXN_OPS, parallel: TXN_PARALLEL };
}

export class ScaleLab {
  private driver: NodeSession | null = null;
  private pid: number | null;
  /** Fake peers in etcd now: [0, present) (churn adds new ones above). */
  private present = 0;

  private constructor(
    readonly backend: string,
    private readonly state: LabState,
    private readonly plan: LabPlan,
    private readonly host: LabHost,
    private readonly deps: LabDeps,
    private readonly pollMs: number,
  ) {
    this.pid = state.hosts[0]?.pid ?? null;
  }

  /** Brings the lab up; the caller must `down()` it, whatever happens next. */
  static async up(name: string, backend: string, pollMs: number, deps: LabDeps): Promise<ScaleLab> {
    const dir = defaultLabDir(name);
    const report = (l: string): void => deps.report(`  ${l}`);
    const state = await labUp({ name, dir, hosts: 1, podsPerHost: 0, backend, topology: 'flat', network: SCALE_NETWORK }, { ...deps, report });
    const plan = planOf(state);
    const host = plan.hosts[0];
    if (!host) throw new TwillError('TWILL_ERR_LAB_STATE', `lab "${name}" has no host`);
    return new ScaleLab(backend, state, plan, host, deps, pollMs);
  }

  /** Stops the agent `up` started, puts the peers' segment on eth0, starts the driver. */
  async prepare(): Promise<void> {
    await this.stopAgent();
    await ipBatch(this.host.ns, [`addr add ${PEER_SEGMENT_HOST} dev eth0`]);
    const cfg = driverConfig(this.backend, this.state.etcd.endpoint, `http://${agentStatusAddr(this.host)}`, this.pollMs);
    this.driver = startNodeSession({ ns: this.host.ns, file: SCALE_DRIVER_PROGRAM, args: [JSON.stringify(cfg)], signal: this.deps.signal });
  }

  private async call<R extends DriverRequest>(req: R, timeoutMs = QUICK_MS): Promise<Ok<R['op']>> {
    if (!this.driver) throw new TwillError('TWILL_ERR_LAB_STATE', 'the scale driver is not running');
    const reply = await this.driver.request<DriverReply>(req, timeoutMs + ANSWER_GRACE_MS);
    if (!reply.ok) throw new TwillError('TWILL_ERR_LAB_STATE', `${this.backend}: ${req.op}: ${reply.error}${this.agentGone()}`);
    return reply as Ok<R['op']>;
  }

  private agentGone(): string {
    return this.pid !== null && !isAlive(this.pid) ? ` (the agent exited; see ${hostFiles(this.host).log})` : '';
  }

  private async stopAgent(): Promise<void> {
    if (this.pid !== null) await stopProcess(this.pid);
    this.pid = null;
  }

  /**
   * A fresh agent with `peers` fake peers already in etcd and none of its routes in the kernel:
   * from its start to every peer programmed.
   */
  async coldStart(peers: number): Promise<Timing> {
    await this.stopAgent();
    await this.call({ op: 'clear' });
    this.present = 0;
    await ipBatch(this.host.ns, [`route flush proto ${TWILL_ROUTE_PROTO}`]);
    await this.call({ op: 'put', from: 0, count: peers });
    this.present = peers;
    await this.call({ op: 'mark', routes: 0 });
    const cli = await cliEntry();
    const since = Date.now();
    this.pid = await startAgent(this.plan, this.host, cli);
    const timeoutMs = waitTimeoutMs(peers);
    const done = await this.call({ op: 'wait', since, timeoutMs }, timeoutMs);
    return { ms: done.doneAt - since, resolutionMs: done.resolutionMs, polls: done.polls };
  }

  /** Deletes peers [0, count) or adds them, as fast as etcd takes it: from the first write to all programmed. */
  async burst(kind: 'add' | 'delete', count: number): Promise<BurstTiming> {
    const timeoutMs = waitTimeoutMs(count);
    const r = await this.call({ op: 'burst', kind, from: 0, count, timeoutMs }, timeoutMs);
    this.present = kind === 'delete' ? 0 : count;
    return { ms: r.doneAt - r.startAt, resolutionMs: r.resolutionMs, polls: r.polls, writeMs: r.writtenAt - r.startAt };
  }

  async churn(rate: number, seconds: number, seed: number): Promise<{ lag: Timing; changes: number; writeSeconds: number; cpuSeconds: number; childCpuSeconds: number; wallSeconds: number }> {
    const timeoutMs = waitTimeoutMs(this.present) + seconds * 1000;
    const cpu0 = await this.cpu();
    const t0 = performance.now();
    const r = await this.call({ op: 'churn', rate, seconds, seed, firstNew: this.present, timeoutMs }, timeoutMs);
    const wallSeconds = (performance.now() - t0) / 1000;
    const cpu1 = await this.cpu();
    const lag = { ms: r.doneAt - r.lastWriteAt, resolutionMs: r.resolutionMs, polls: r.polls };
    return { lag, changes: r.changes, writeSeconds: (r.lastWriteAt - r.startAt) / 1000, cpuSeconds: cpu1.own - cpu0.own, childCpuSeconds: cpu1.children - cpu0.children, wallSeconds };
  }

  async probe(path: string, times: number): Promise<{ path: string; bytes: number; latenciesMs: readonly number[] }> {
    const r = await this.call({ op: 'probe', path, times });
    return { path, bytes: r.bytes, latenciesMs: r.latenciesMs };
  }

  /** The agent's CPU so far (its own, and its reaped programs'); an agent that is gone is an error pointing at its log. */
  async cpu(): Promise<ProcessCpu> {
    const s = this.pid === null ? null : await processCpu(this.pid);
    if (s === null) throw new TwillError('TWILL_ERR_LAB_STATE', `${this.backend}: the agent is not running; see ${hostFiles(this.host).log}`);
    return s;
  }

  async memory(): Promise<ProcessMemory> {
    const m = this.pid === null ? null : await processMemory(this.pid);
    if (m === null) throw new TwillError('TWILL_ERR_LAB_STATE', `${this.backend}: the agent is not running; see ${hostFiles(this.host).log}`);
    return m;
  }

  /** Stops the driver and tears the lab down (agent, etcd, namespaces, directory). */
  async down(): Promise<void> {
    await this.driver?.close().catch(() => undefined);
    this.driver = null;
    const { name, dir } = this.state.options;
    const aborted = this.deps.signal?.aborted ? ' (interrupted)' : '';
    this.deps.report(`[${this.backend} lab] lab down: removing twl-${name}-*${aborted}`);
    await labDown(name, dir).catch((e: unknown) => this.deps.report(`lab down failed: ${String(e)}; run "twill lab down --name ${name}"`));
  }
}
