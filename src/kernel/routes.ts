import { z } from 'zod';
import { TwillError } from '../errors.js';
import { formatCidr, parseCidr, parseIp } from '../lib/ipv4.js';
import { parseBatchStderr, runBatchLines, type ChangeFailure } from './batch.js';
import type { exec } from './exec.js';
import type { FeedStarter } from './monitor.js';
import type { KernelEvent } from './route-monitor.js';
import { checkIfname, nsOpt } from './syntax.js';

/** The signature of exec(); injected so that tests can fake ip's answers. */
export type ExecFn = typeof exec;
export { parseBatchStderr };

/**
 * The rtnetlink protocol number on every route twill installs. It marks a route as ours, so
 * that stale ones can be found and removed (`ip route show proto 116`) while routes added by
 * anyone else are never listed, changed or deleted. 116 is unassigned in iproute2's rt_protos.
 */
export const TWILL_ROUTE_PROTO = 116;

/** An IPv4 route in table main, as read back from the kernel. */
export interface KernelRoute {
  /** Always CIDR form: "10.244.2.0/24", "0.0.0.0/0" for default, "/32" for host routes. */
  readonly dst: string;
  readonly gateway?: string;
  readonly dev?: string;
  /** The rtnetlink protocol as a number (listMain only). */
  readonly proto?: number;
}

export type RouteChange =
  | {
      readonly op: 'replace';
      readonly dst: string;
      readonly gateway: string;
      readonly dev: string;
      readonly proto: number;
      /** The gateway is taken as on-link without a route to it (vxlan: the peer's address behind the tunnel device). */
      readonly onlink?: boolean;
    }
  | { readonly op: 'delete'; readonly dst: string; readonly proto: number };

/** A change that did not apply: `line` is what ip was given, `reason` what it said. */
export interface BatchFailure extends ChangeFailure<RouteChange> {
  readonly line: string;
}

export interface BatchResult {
  readonly failed: readonly BatchFailure[];
}

/** Where the kernel would send a packet to an address (`ip route get`). */
export interface RouteLookup {
  readonly dev: string;
  readonly gateway?: string;
}

export interface RouteOps {
  list(proto: number): Promise<KernelRoute[]>;
  /** Every IPv4 route of table main with its protocol, in one listing (ours and everyone else's). */
  listMain(): Promise<KernelRoute[]>;
  /** Applies all changes with one `ip -force -batch -`; failed lines are reported, not thrown. */
  apply(changes: readonly RouteChange[]): Promise<BatchResult>;
  /** `ip route get IP`; with `from`, as a packet from that source (arriving on `iif`) would go. */
  get(ip: string, from?: { readonly src: string; readonly iif?: string }): Promise<RouteLookup | null>;
  /** `get` for many addresses in one process; null where there is no route. */
  getMany(ips: readonly string[]): Promise<Map<string, RouteLookup | null>>;
  /** Route, link and address changes as they happen; absent where they cannot be watched. */
  readonly events?: FeedStarter<KernelEvent>;
}

/** Parses ip's `-json` output against a schema; anything unexpected is a command failure. */
export function parseIpJson<T>(json: string, schema: z.ZodType<T>, what: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(json.trim() === '' ? '[]' : json);
  } catch (err) {
    throw new TwillError('TWILL_ERR_KERNEL_COMMAND', `${what}: output is not JSON`, { cause: err, details: { output: json.slice(0, 500) } });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new TwillError('TWILL_ERR_KERNEL_COMMAND', `${what}: unexpected JSON shape`, { cause: parsed.error, details: { output: json.slice(0, 500) } });
  }
  return parsed.data;
}

const routeSchema = z.array(z.object({ dst: z.string(), gateway: z.string().optional(), dev: z.string().optional(), protocol: z.union([z.string(), z.number()]).optional() }));

/** "default" → 0.0.0.0/0 and a bare address → /32, so callers compare one spelling. */
export function normalizeDst(dst: string): string {
  if (dst === 'default') return '0.0.0.0/0';
  const net = parseCidr(dst.includes('/') ? dst : `${dst}/32`, false);
  return net ? formatCidr(net) : dst;
}

/** Parses `ip -json route show ...`. */
export function parseRouteList(json: string): KernelRoute[] {
  return parseIpJson(json, routeSchema, 'ip route show').map((r) => ({
    dst: normalizeDst(r.dst),
    ...(r.gateway === undefined ? {} : { gateway: r.gateway }),
    ...(r.dev === undefined ? {} : { dev: r.dev }),
    ...(r.protocol === undefined || !/^\d+$/.test(String(r.protocol)) ? {} : { proto: Number(r.protocol) }),
  }));
}

/** Parses `ip -json route get IP` (one array, one entry); entries without a device count as no route. */
export function parseRouteGet(json: string): (RouteLookup & { dst: string }) | null {
  const first = parseRouteList(json)[0];
  if (!first?.dev) return null;
  return { dst: first.dst, dev: first.dev, ...(first.gateway === undefined ? {} : { gateway: first.gateway }) };
}

/** Why a change cannot be sent to ip, or null. ip aborts the whole batch on a malformed argument. */
function invalidReason(c: RouteChange): string | null {
  if (!parseCidr(c.dst)) return `invalid destination "${c.dst}"`;
  if (!Number.isInteger(c.proto) || c.proto < 0 || c.proto > 255) return `invalid proto ${c.proto}`;
  if (c.op === 'delete') return null;
  if (parseIp(c.gateway) === null) return `invalid gateway "${c.gateway}"`;
  return checkIfname(c.dev);
}

/** The `ip -batch` line for one change (`onlink` only when asked: host-gw needs the gateway really on-link). */
export function routeBatchLine(c: RouteChange): string {
  switch (c.op) {
    case 'replace':
      return `route replace ${c.dst} via ${c.gateway} dev ${c.dev}${c.onlink === true ? ' onlink' : ''} proto ${c.proto}`;
    case 'delete':
      // Matching on proto means the kernel never deletes someone else's route for the same dst.
      return `route del ${c.dst} proto ${c.proto}`;
  }
}

async function applyBatch(run: ExecFn, netns: string | undefined, changes: readonly RouteChange[]): Promise<BatchResult> {
  const failed: BatchFailure[] = [];
  const sent: RouteChange[] = [];
  for (const change of changes) {
    const invalid = invalidReason(change);
    if (invalid) failed.push({ change, line: '', reason: invalid });
    else sent.push(change);
  }
  const lines = sent.map(routeBatchLine);
  for (const { index, reason } of await runBatchLines(run, 'ip', [], lines, nsOpt(netns))) {
    const change = sent[index];
    if (change) failed.push({ change, line: lines[index] ?? '', reason });
  }
  return { failed };
}

async function getMany(run: ExecFn, netns: string | undefined, ips: readonly string[]): Promise<Map<string, RouteLookup | null>> {
  const result = new Map<string, RouteLookup | null>(ips.map((ip) => [ip, null]));
  const valid = [...new Set(ips)].filter((ip) => parseIp(ip) !== null);
  if (valid.length === 0) return result;
  const lines = valid.map((ip) => `route get ${ip}`);
  const res = await run('ip', ['-json', '-force', '-batch', '-'], { input: `${lines.join('\n')}\n`, allowFailure: true, ...nsOpt(netns) });
  const failed = parseBatchStderr(res.stderr, lines.length, res.code);
  const answers = res.stdout.split('\n').filter((l) => l.trim() !== '');
  // Each answered line prints one JSON array; if that does not add up, ip's output cannot be trusted.
  if (answers.length + failed.size !== lines.length) {
    throw new TwillError('TWILL_ERR_KERNEL_COMMAND', 'ip route get batch: output does not match the request', { details: { ...res } });
  }
  for (const answer of answers) {
    const lookup = parseRouteGet(answer);
    if (lookup) result.set(lookup.dst.replace(/\/32$/, ''), { dev: lookup.dev, ...(lookup.gateway ? { gateway: lookup.gateway } : {}) });
  }
  return result;
}

export function createRouteOps(run: ExecFn, netns?: string): RouteOps {
  return {
    async list(proto) {
      const res = await run('ip', ['-json', '-4', 'route', 'show', 'table', 'main', 'proto', String(proto)], nsOpt(netns));
      return parseRouteList(res.stdout);
    },
    async listMain() {
      // -N: protocols as numbers, whatever names /etc/iproute2/rt_protos gives them.
      const res = await run('ip', ['-N', '-json', '-4', 'route', 'show', 'table', 'main'], nsOpt(netns));
      return parseRouteList(res.stdout);
    },
    apply: (changes) => applyBatch(run, netns, changes),
    async get(ip, from) {
      if (parseIp(ip) === null || (from && parseIp(from.src) === null)) return null;
      const source = from ? ['from', from.src, ...(from.iif ? ['iif', from.iif] : [])] : [];
      const res = await run('ip', ['-json', 'route', 'get', ip, ...source], { ...nsOpt(netns), allowFailure: true });
      const lookup = res.code === 0 ? parseRouteGet(res.stdout) : null;
      return lookup && { dev: lookup.dev, ...(lookup.gateway ? { gateway: lookup.gateway } : {}) };
    },
    getMany: (ips) => getMany(run, netns, ips),
  };
}
