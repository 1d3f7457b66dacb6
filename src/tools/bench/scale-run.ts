/**
 * `twill bench scale`: the kernel's floor for every peer count first (fresh namespaces, nothing
 * else running), then one lab per backend, in which the real agent meets each peer count in
 * turn: a cold start, its idle CPU and memory, its API's size and latency, a burst of deletes and
 * a burst of adds; and once per backend, churn at `churnPeers` peers. A step that fails is
 * recorded with its cell and the run goes on; an interrupt stops it, and every namespace goes.
 */
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LabDeps } from '../lab/up.js';
import { Progress } from './plan.js';
import { machine } from './run.js';
import { measureFloor } from './scale-floor.js';
import { ScaleLab } from './scale-lab.js';
import { estimateScaleSeconds, scaleEstimate as E } from './scale-plan.js';
import { SCALE_RESULTS_SCHEMA, SETTLE_SECONDS, type CellResult, type ChurnResult, type ScaleResults, type ScaleSettings } from './scale-results.js';

export interface ScaleOptions {
  readonly settings: ScaleSettings;
  /** Lab name: namespaces `twl-<name>-*`, directory /tmp/twill-lab/<name>. */
  readonly lab: string;
}

/** The churn's changes come from a seeded generator, so that every run churns alike. */
const CHURN_SEED = 13;

interface Ctx {
  readonly opts: ScaleOptions;
  readonly deps: LabDeps;
  readonly progress: Progress;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function step(ctx: Ctx, where: string, what: string, seconds: number): void {
  ctx.deps.signal?.throwIfAborted();
  ctx.progress.step(where, what, seconds);
}

/** Sleeps; an interrupt rejects with its reason ("interrupted by SIGINT"), not a bare AbortError. */
async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, { signal }).catch((e: unknown) => {
    signal?.throwIfAborted();
    throw e;
  });
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const round = (xs: readonly number[]): number[] => xs.map((x) => Math.round(x * 100) / 100);

export async function runScale(opts: ScaleOptions, deps: LabDeps): Promise<ScaleResults> {
  const date = new Date().toISOString();
  const start = round(loadavg());
  const s = opts.settings;
  const ctx: Ctx = { opts, deps, progress: new Progress(estimateScaleSeconds(s), deps.report) };
  const floor = [];
  for (const n of s.peers) {
    step(ctx, 'floor', `ip -batch of ${n} route adds, then of ${n} deletes, in a fresh namespace (×${s.floorRepeat})`, E.floor(n, s.floorRepeat));
    floor.push(await measureFloor(opts.lab, n, s.floorRepeat, deps.signal));
  }
  const cells: CellResult[] = [];
  const churn: ChurnResult[] = [];
  for (const backend of s.backends) {
    const r = await runBackend(backend, ctx);
    cells.push(...r.cells);
    churn.push(r.churn);
  }
  return { schema: SCALE_RESULTS_SCHEMA, date, machine: machine(), loadAverage: { start, end: round(loadavg()) }, settings: s, floor, cells, churn };
}

async function runBackend(backend: string, ctx: Ctx): Promise<{ cells: CellResult[]; churn: ChurnResult }> {
  const s = ctx.opts.settings;
  const where = `${backend} lab`;
  step(ctx, where, `lab up: 1 host, ${backend}, no pods`, E.labUp());
  const lab = await ScaleLab.up(ctx.opts.lab, backend, s.pollMs, ctx.deps);
  try {
    await lab.prepare();
    const cells: CellResult[] = [];
    let churn: ChurnResult | null = null;
    for (const n of s.peers) {
      const cell = await measureCell(lab, n, ctx);
      cells.push(cell);
      // The agent holds exactly churnPeers peers, all programmed: churn from there.
      if (n === s.churnPeers && cell.error === null) churn = await measureChurn(lab, ctx, false);
    }
    return { cells, churn: churn ?? (await measureChurn(lab, ctx, true)) };
  } finally {
    await lab.down();
  }
}

async function measureCell(lab: ScaleLab, n: number, ctx: Ctx): Promise<CellResult> {
  const s = ctx.opts.settings;
  const where = `${lab.backend}, ${n} peers`;
  const r: Mutable<CellResult> = { backend: lab.backend, peers: n, coldStart: null, burstDelete: null, burstAdd: null, idle: null, memory: null, api: [], error: null };
  try {
    step(ctx, where, `cold start: ${n} peers in etcd, a fresh agent, until all are programmed`, E.peers(n));
    r.coldStart = await lab.coldStart(n);
    step(ctx, where, `idle: agent CPU over ${s.idleSeconds} s (after ${SETTLE_SECONDS} s), memory`, SETTLE_SECONDS + s.idleSeconds);
    await pause(SETTLE_SECONDS * 1000, ctx.deps.signal);
    const cpu0 = await lab.cpu();
    const t0 = performance.now();
    await pause(s.idleSeconds * 1000, ctx.deps.signal);
    const cpu1 = await lab.cpu();
    r.idle = { seconds: (performance.now() - t0) / 1000, cpuSeconds: cpu1.own - cpu0.own, childCpuSeconds: cpu1.children - cpu0.children };
    const idleMemory = await lab.memory();
    r.memory = idleMemory;
    step(ctx, where, `GET /v1/status and /metrics, ${s.apiProbes} times each`, E.probes(s.apiProbes, n));
    r.api = [await lab.probe('/v1/status', s.apiProbes), await lab.probe('/metrics', s.apiProbes)];
    step(ctx, where, `burst: ${n} deletes`, E.peers(n));
    r.burstDelete = await lab.burst('delete', n);
    step(ctx, where, `burst: ${n} adds`, E.peers(n));
    r.burstAdd = await lab.burst('add', n);
    r.memory = { rssBytes: idleMemory.rssBytes, peakBytes: (await lab.memory()).peakBytes };
  } catch (err) {
    if (ctx.deps.signal?.aborted) throw err;
    r.error = message(err);
    ctx.deps.report(`[${where}] failed, going on with the next step: ${r.error}`);
  }
  return r;
}

async function measureChurn(lab: ScaleLab, ctx: Ctx, setup: boolean): Promise<ChurnResult> {
  const s = ctx.opts.settings;
  const where = `${lab.backend}, churn`;
  const r: Mutable<ChurnResult> = { backend: lab.backend, peers: s.churnPeers, rate: s.churnRate, seconds: s.churnSeconds, changes: 0, writeSeconds: null, lag: null, cpuSeconds: null, childCpuSeconds: null, wallSeconds: null, error: null };
  try {
    if (setup) {
      step(ctx, where, `a fresh agent with ${s.churnPeers} peers`, E.peers(s.churnPeers));
      await lab.coldStart(s.churnPeers);
    }
    step(ctx, where, `${s.churnRate} changes/s for ${s.churnSeconds} s at ${s.churnPeers} peers, then the lag`, s.churnSeconds + 1);
    const c = await lab.churn(s.churnRate, s.churnSeconds, CHURN_SEED);
    Object.assign(r, c);
  } catch (err) {
    if (ctx.deps.signal?.aborted) throw err;
    r.error = message(err);
    ctx.deps.report(`[${where}] failed: ${r.error}`);
  }
  return r;
}
