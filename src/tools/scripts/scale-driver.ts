/**
 * The driver of `twill bench scale`, run as its own long-lived program (scale-driver.main.ts) in
 * the host namespace of the scale lab, beside the agent: etcd and the agent's API are reachable
 * from there, and /proc/self/net is that namespace's. ../bench/scale-lab.ts starts it with
 * `ip netns exec` and sends it one request per line on stdin; it answers each with one line.
 *
 * It writes fake peers (scale-peers.ts) into etcd through the v3 HTTP gateway, in transactions of
 * up to `txnOps` operations with `parallel` in flight, and it tells when the agent has programmed
 * exactly the peers present:
 * - `kernel-routes` (host-gw): the routes via a gateway inside the network, as /proc/self/net/route
 *   lists them, are exactly the peers' subnets via their PublicIPs. While waiting, it polls the
 *   cheap route count of /proc/self/net/fib_triestat (well under a millisecond, where reading
 *   10,000 routes takes 12 ms) and reads the routes themselves when the count is right, and at
 *   least every FULL_CHECK_MS whatever the count says. The count is only a hint: it is the
 *   table's prefixes less `base`, the ones that are not fake routes, and a listing cannot tell
 *   `base` again while the agent changes routes (/proc/self/net/route is read in chunks, and a
 *   batch applied meanwhile shows both the routes it deletes and the ones it adds). So a
 *   listing that differs never moves `base`; one that is exactly the peers does, when the count
 *   disagreed (a route beside the fake ones came or went) and the table held still around it.
 * - `agent-api` (udp, whose peers live in the agent's memory): the agent's /metrics says
 *   twill_peers and twill_routes (programmed peers) are the count, then its /v1/status lists
 *   exactly those peers, all `programmed`. Polls wait three times as long as the last one took,
 *   so that asking costs the agent at most a quarter of its time. After adds, the time is the
 *   latest `since` of the peers (the agent's own stamp, same clock) when that is earlier.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PeerStatus } from '../../status/types.js';
import { chunks, expectedPeers, fakeLease, fakeRoutes, parseMetric, parseProcNetRoute, parseTrieStatPrefixes, planChurn, sameMap, txnBody, type KvOp, type PeerTemplate } from './scale-peers.js';

export type ProgrammedBy = 'kernel-routes' | 'agent-api';

export interface DriverConfig {
  /** etcd's client URL (its v3 HTTP gateway). */
  readonly etcd: string;
  /** The agent's status API, `http://IP:PORT`. */
  readonly api: string;
  readonly template: PeerTemplate;
  readonly programmedBy: ProgrammedBy;
  /** Shortest time between two polls. */
  readonly pollMs: number;
  /** Operations per etcd transaction (etcd's --max-txn-ops is 128 by default) and transactions in flight. */
  readonly txnOps: number;
  readonly parallel: number;
}

export type DriverRequest =
  /** Writes peers [from, from+count) in generation 0, untimed. */
  | { readonly op: 'put'; readonly from: number; readonly count: number }
  /** Deletes every peer present, untimed. */
  | { readonly op: 'clear' }
  /** The kernel holds `routes` fake routes now (the agent is stopped and its routes flushed). */
  | { readonly op: 'mark'; readonly routes: number }
  /** Waits until the agent has exactly the peers present (a cold start: the agent was just started). */
  | { readonly op: 'wait'; readonly timeoutMs: number; readonly since: number }
  /** Adds (or deletes) peers [from, from+count) as fast as etcd takes them, then waits. */
  | { readonly op: 'burst'; readonly kind: 'add' | 'delete'; readonly from: number; readonly count: number; readonly timeoutMs: number }
  /** `rate` changes per second for `seconds` (planChurn, new peers from `firstNew`), then waits. */
  | { readonly op: 'churn'; readonly rate: number; readonly seconds: number; readonly seed: number; readonly firstNew: number; readonly timeoutMs: number }
  /** GETs a path of the agent's API `times` times in a row, after one untimed GET. */
  | { readonly op: 'probe'; readonly path: string; readonly times: number };

/** When the agent had it all, and how sure that is. Times are ms since the epoch (Date.now()). */
export interface Done {
  readonly doneAt: number;
  /** How late `doneAt` may be: the gap since the previous poll; 0 when it is the agent's own `since`. */
  readonly resolutionMs: number;
  readonly polls: number;
}

export type DriverReply =
  | { readonly ok: true; readonly op: 'put' | 'clear' | 'mark'; readonly ms: number }
  | ({ readonly ok: true; readonly op: 'wait' } & Done)
  | ({ readonly ok: true; readonly op: 'burst'; readonly startAt: number; readonly writtenAt: number } & Done)
  | ({ readonly ok: true; readonly op: 'churn'; readonly startAt: number; readonly lastWriteAt: number; readonly changes: number; readonly peers: number } & Done)
  | { readonly ok: true; readonly op: 'probe'; readonly bytes: number; readonly latenciesMs: readonly number[] }
  | { readonly ok: false; readonly error: string };

const HTTP_TIMEOUT_MS = 30_000;
const API_POLL_FACTOR = 3;
/** kernel-routes: the routes are compared at least this often, so that a count gone wrong costs time, never the step. */
export const FULL_CHECK_MS = 1_000;

type Peer = Pick<PeerStatus, 'subnet' | 'publicIP' | 'state' | 'since'>;

/**
 * One poll's verdict. `full`: the routes themselves were compared (kernel-routes). `recounted`:
 * done although the count said otherwise, so the polls that went only by the count said nothing.
 */
type Check = { done: true; at: number; latestSince: number | null; recounted: boolean } | { done: false; seen: string; full: boolean };

/** One driver per lab: it remembers which peers it has put into etcd (index → generation). */
export class ScaleDriver {
  private readonly present = new Map<number, number>();
  /** kernel-routes: what fib_triestat counts beside the fake routes. */
  private base = 0;

  constructor(
    private readonly cfg: DriverConfig,
    /** Reads /proc/self/net/* (the tests hand in a kernel of their own). */
    private readonly readProc: (path: string) => Promise<string> = (path) => readFile(path, 'utf8'),
  ) {}

  async handle(req: DriverRequest): Promise<DriverReply> {
    const t0 = performance.now();
    switch (req.op) {
      case 'put':
        await this.write(range(req.from, req.count).map((i) => this.putOp(i, 0)));
        return { ok: true, op: req.op, ms: performance.now() - t0 };
      case 'clear':
        await this.write([...this.present.keys()].map((i) => this.delOp(i)));
        return { ok: true, op: req.op, ms: performance.now() - t0 };
      case 'mark':
        this.base = (await this.prefixes()) - req.routes;
        return { ok: true, op: req.op, ms: performance.now() - t0 };
      case 'wait':
        return { ok: true, op: 'wait', ...(await this.waitProgrammed(req.since, req.timeoutMs, true)) };
      case 'burst': {
        const ops = range(req.from, req.count).map((i) => (req.kind === 'add' ? this.putOp(i, 0) : this.delOp(i)));
        const startAt = Date.now();
        const lastSentAt = await this.write(ops);
        const writtenAt = Date.now();
        return { ok: true, op: 'burst', startAt, writtenAt, ...(await this.waitProgrammed(startAt, req.timeoutMs, req.kind === 'add', lastSentAt)) };
      }
      case 'churn':
        return this.churn(req);
      case 'probe':
        return { ok: true, op: 'probe', ...(await this.probe(req.path, req.times)) };
    }
  }

  private putOp(i: number, gen: number): KvOp {
    const lease = fakeLease(i, gen, this.cfg.template);
    this.present.set(i, gen);
    return { put: { key: lease.key, value: lease.value } };
  }

  private delOp(i: number): KvOp {
    this.present.delete(i);
    return { del: fakeLease(i, 0, this.cfg.template).key };
  }

  /** Every op, in transactions of txnOps, `parallel` at a time; returns when the last one was sent. */
  private async write(ops: readonly KvOp[]): Promise<number> {
    const queue = chunks(ops, this.cfg.txnOps);
    let lastSentAt = Date.now();
    const worker = async (): Promise<void> => {
      for (let batch = queue.shift(); batch; batch = queue.shift()) {
        lastSentAt = Date.now();
        await this.etcd('/v3/kv/txn', txnBody(batch));
      }
    };
    await Promise.all(Array.from({ length: this.cfg.parallel }, worker));
    return lastSentAt;
  }

  private async etcd(path: string, body: string): Promise<void> {
    const r = await fetch(this.cfg.etcd + path, { method: 'POST', body, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    const text = await r.text();
    if (!r.ok) throw new Error(`etcd ${path}: HTTP ${r.status} ${text.slice(0, 300)}`);
  }

  private async prefixes(): Promise<number> {
    const n = parseTrieStatPrefixes(await this.readProc('/proc/self/net/fib_triestat'));
    if (n === null) throw new Error('/proc/self/net/fib_triestat has no Main prefixes count');
    return n;
  }

  /**
   * Polls until the agent has exactly the peers present; `since` is when the step began (its
   * `since` stamps count only after it), `notBefore` when the last write was sent (the agent
   * cannot be done earlier). A timeout is an error naming how far it got.
   */
  private async waitProgrammed(since: number, timeoutMs: number, adds: boolean, notBefore = since): Promise<Done> {
    const want = expectedPeers(this.present);
    const deadline = Date.now() + timeoutMs;
    let polls = 0;
    // Until a poll has seen it undone, it may have been done as soon as the last write went out.
    let last = notBefore;
    // The same for the polls that compared the routes themselves (a count can be wrong).
    let lastFull = notBefore;
    let fullCheckedAt = Date.now();
    for (;;) {
      const before = Date.now();
      const t = performance.now();
      const check = await this.check(want, adds, before - fullCheckedAt >= FULL_CHECK_MS);
      polls++;
      if (check.done) {
        const stamped = check.latestSince;
        if (stamped !== null && stamped >= since && stamped <= check.at) return { doneAt: stamped, resolutionMs: 0, polls };
        return { doneAt: check.at, resolutionMs: check.at - (check.recounted ? lastFull : last), polls };
      }
      last = before;
      if (check.full) [lastFull, fullCheckedAt] = [before, before];
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${want.size} peers programmed (saw ${check.seen})`);
      const took = performance.now() - t;
      await sleep(this.cfg.programmedBy === 'agent-api' ? Math.max(this.cfg.pollMs, API_POLL_FACTOR * took) : this.cfg.pollMs);
    }
  }

  /**
   * One poll. `at` is when the cheap signal (the route count, the metrics) said done; the full
   * comparison that follows only confirms it. `full` (kernel-routes): compare the routes whatever
   * the count says.
   */
  private async check(want: ReadonlyMap<string, string>, adds: boolean, full: boolean): Promise<Check> {
    if (this.cfg.programmedBy === 'kernel-routes') {
      const prefixes = await this.prefixes();
      const count = prefixes - this.base;
      const at = Date.now();
      if (count !== want.size && !full) return { done: false, seen: `${count} routes`, full: false };
      const routes = fakeRoutes(parseProcNetRoute(await this.readProc('/proc/self/net/route')));
      // Not a reason to count again: the listing may have been torn by a batch applied while it was read.
      if (!sameMap(routes, want)) return { done: false, seen: `${routes.size} routes, not all the expected ones`, full: true };
      if (count === want.size) return { done: true, at, latestSince: null, recounted: false };
      // The peers' routes, but not their count: a route beside them came or went. Count from
      // here on, if the table held still while it was listed.
      if ((await this.prefixes()) === prefixes) this.base = prefixes - want.size;
      return { done: true, at: Date.now(), latestSince: null, recounted: true };
    }
    const metrics = await this.get('/metrics');
    const at = Date.now();
    if (metrics === null) return { done: false, seen: 'no answer from the agent', full: false };
    const peers = parseMetric(metrics, 'twill_peers');
    const routes = parseMetric(metrics, 'twill_routes');
    if (peers !== want.size || (routes !== null && routes !== want.size)) return { done: false, seen: `${peers} peers, ${routes} programmed`, full: false };
    const status = await this.get('/v1/status');
    const listed = status === null ? [] : (JSON.parse(status) as { peers: readonly Peer[] }).peers;
    const have = new Map(listed.filter((p) => p.state === 'programmed').map((p) => [p.subnet, p.publicIP]));
    if (!sameMap(have, want)) return { done: false, seen: `${have.size} programmed, not all the expected ones`, full: false };
    return { done: true, at, latestSince: adds && listed.length > 0 ? Math.max(...listed.map((p) => Date.parse(p.since))) : null, recounted: false };
  }

  /** A GET of the agent's API; null when it does not answer (not started yet). */
  private async get(path: string): Promise<string | null> {
    try {
      const r = await fetch(this.cfg.api + path, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
      return r.ok ? await r.text() : null;
    } catch {
      return null;
    }
  }

  private async churn(req: Extract<DriverRequest, { op: 'churn' }>): Promise<DriverReply> {
    const plan = planChurn(this.present, req.firstNew, Math.round(req.rate * req.seconds), req.seed);
    const gapMs = 1000 / req.rate;
    const startAt = Date.now();
    let lastWriteAt = startAt;
    for (const [j, c] of plan.changes.entries()) {
      const due = startAt + j * gapMs;
      if (due > Date.now()) await sleep(due - Date.now());
      const lease = fakeLease(c.index, c.op === 'put' ? c.gen : 0, this.cfg.template);
      lastWriteAt = Date.now();
      if (c.op === 'put') {
        this.present.set(c.index, c.gen);
        await this.etcd('/v3/kv/put', JSON.stringify({ key: b64(lease.key), value: b64(lease.value) }));
      } else {
        this.present.delete(c.index);
        await this.etcd('/v3/kv/deleterange', JSON.stringify({ key: b64(lease.key) }));
      }
    }
    const done = await this.waitProgrammed(lastWriteAt, req.timeoutMs, false);
    return { ok: true, op: 'churn', startAt, lastWriteAt, changes: plan.changes.length, peers: this.present.size, ...done };
  }

  private async probe(path: string, times: number): Promise<{ bytes: number; latenciesMs: number[] }> {
    const once = async (): Promise<number> => {
      const r = await fetch(this.cfg.api + path, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
      const body = await r.arrayBuffer();
      if (!r.ok) throw new Error(`GET ${path}: HTTP ${r.status}`);
      return body.byteLength;
    };
    await once(); // warm-up: the connection, and the agent's first render
    const latenciesMs: number[] = [];
    let bytes = 0;
    for (let i = 0; i < times; i++) {
      const t = performance.now();
      bytes = await once();
      latenciesMs.push(performance.now() - t);
    }
    return { bytes, latenciesMs };
  }
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, k) => from + k);
}

/** Pure: one request line → the request, or an error text. */
export function parseRequest(line: string): DriverRequest | string {
  try {
    const req = JSON.parse(line) as { op?: unknown };
    return typeof req?.op === 'string' ? (req as DriverRequest) : 'a request needs an "op"';
  } catch (err) {
    return `not JSON: ${(err as Error).message}`;
  }
}

/** Pure: the program's one argument, the config. */
export function parseDriverConfig(argv: readonly string[]): DriverConfig | null {
  if (argv.length !== 1) return null;
  try {
    const cfg = JSON.parse(argv[0]!) as Partial<DriverConfig>;
    const ok = typeof cfg.etcd === 'string' && typeof cfg.api === 'string' && (cfg.programmedBy === 'kernel-routes' || cfg.programmedBy === 'agent-api') && typeof cfg.template === 'object';
    return ok ? (cfg as DriverConfig) : null;
  } catch {
    return null;
  }
}
