import { z } from 'zod';
import { runBatchLines, type ChangeFailure, type LineFailure } from './batch.js';
import { parseIpJson, type ExecFn } from './routes.js';
import { checkIfname, checkIp, checkMac, nsOpt } from './syntax.js';

/** A permanent IPv4 neighbour (static ARP entry) on a device. */
export interface Neighbour {
  readonly ip: string;
  readonly mac: string;
}

export type NeighChange =
  | { readonly op: 'replace'; readonly ip: string; readonly mac: string; readonly dev: string }
  | { readonly op: 'delete'; readonly ip: string; readonly dev: string };

export type NeighFailure = ChangeFailure<NeighChange>;

/** One neighbour entry as `ip neigh` shows it, learned or not (twill trace). */
export interface NeighbourState {
  readonly ip: string;
  /** REACHABLE, STALE, PERMANENT, FAILED, INCOMPLETE, ... (several joined by ","). */
  readonly state: string;
  readonly lladdr?: string;
}

export interface NeighOps {
  /** The permanent IPv4 neighbours of a device (learned ones are not listed); [] when it does not exist. */
  listPermanent(dev: string): Promise<Neighbour[]>;
  /** The entry for one address (any state, any device); null when there is none. */
  lookup(ip: string): Promise<NeighbourState | null>;
  /** Applies all changes in one `ip -force -batch -` (more only when ip stops on a line); failures are returned. */
  apply(changes: readonly NeighChange[]): Promise<NeighFailure[]>;
}

const neighSchema = z.array(z.object({ dst: z.string(), lladdr: z.string().optional(), state: z.array(z.string()).optional() }));

/** Pure: `ip -json neigh show to IP` → its first entry, with its states joined. */
export function parseNeighLookup(json: string): NeighbourState | null {
  const [n] = parseIpJson(json, neighSchema, 'ip neigh show');
  if (n === undefined) return null;
  return { ip: n.dst, state: (n.state ?? []).join(',') || 'NONE', ...(n.lladdr === undefined ? {} : { lladdr: n.lladdr.toLowerCase() }) };
}

/** Pure: `ip -json neigh show dev D` → its permanent IPv4 entries with a link-layer address, MACs lower-case. */
export function parseNeighList(json: string): Neighbour[] {
  return parseIpJson(json, neighSchema, 'ip neigh show').flatMap((n) =>
    n.lladdr !== undefined && n.state?.includes('PERMANENT') && checkIp(n.dst) === null ? [{ ip: n.dst, mac: n.lladdr.toLowerCase() }] : [],
  );
}

/** Why a change cannot be sent to ip (a malformed argument would stop the batch), or null. */
function invalidNeigh(c: NeighChange): string | null {
  return checkIp(c.ip) ?? checkIfname(c.dev) ?? (c.op === 'replace' ? checkMac(c.mac) : null);
}

/** Pure: the `ip -batch` line for one change. */
export function neighBatchLine(c: NeighChange): string {
  switch (c.op) {
    case 'replace':
      return `neigh replace ${c.ip} lladdr ${c.mac} dev ${c.dev} nud permanent`;
    case 'delete':
      return `neigh del ${c.ip} dev ${c.dev}`;
  }
}

export function createNeighOps(run: ExecFn, netns?: string): NeighOps {
  return {
    async lookup(ip) {
      if (checkIp(ip) !== null) return null;
      const res = await run('ip', ['-json', '-4', 'neigh', 'show', 'to', ip], { ...nsOpt(netns), allowFailure: true });
      return res.code === 0 ? parseNeighLookup(res.stdout) : null;
    },
    async listPermanent(dev) {
      const res = await run('ip', ['-json', '-4', 'neigh', 'show', 'dev', dev], { ...nsOpt(netns), allowFailure: true });
      return res.code === 0 ? parseNeighList(res.stdout) : [];
    },
    async apply(changes) {
      const failed: NeighFailure[] = [];
      const sent = changes.filter((change) => {
        const reason = invalidNeigh(change);
        if (reason !== null) failed.push({ change, reason });
        return reason === null;
      });
      const lines = sent.map(neighBatchLine);
      const failures: LineFailure[] = lines.length === 0 ? [] : await runBatchLines(run, 'ip', [], lines, nsOpt(netns));
      for (const f of failures) failed.push({ change: sent[f.index]!, reason: f.reason });
      return failed;
    },
  };
}
