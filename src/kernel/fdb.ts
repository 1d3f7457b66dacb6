import { z } from 'zod';
import { runBatchLines, type ChangeFailure } from './batch.js';
import { parseIpJson, type ExecFn } from './routes.js';
import { checkIfname, checkIp, checkMac, nsOpt } from './syntax.js';

/** A permanent forwarding entry of a VXLAN device: frames for `mac` go to the VTEP at `dst`. */
export interface FdbEntry {
  readonly mac: string;
  readonly dst: string;
}

export type FdbChange =
  | { readonly op: 'replace'; readonly mac: string; readonly dst: string; readonly dev: string }
  | { readonly op: 'delete'; readonly mac: string; readonly dst: string; readonly dev: string };

export type FdbFailure = ChangeFailure<FdbChange>;

export interface FdbOps {
  /** The device's permanent `self` entries with an IPv4 `dst` (learned ones are not listed); [] when it does not exist. */
  listPermanent(dev: string): Promise<FdbEntry[]>;
  /** Applies all changes in one `bridge -force -batch -`; failures are returned. */
  apply(changes: readonly FdbChange[]): Promise<FdbFailure[]>;
}

const fdbSchema = z.array(z.object({ mac: z.string(), dst: z.string().optional(), flags: z.array(z.string()).optional(), state: z.string().optional() }));

/** Pure: `bridge -json fdb show dev D` → its permanent `self` entries towards an IPv4 VTEP, MACs lower-case. */
export function parseFdbList(json: string): FdbEntry[] {
  return parseIpJson(json, fdbSchema, 'bridge fdb show').flatMap((e) =>
    e.dst !== undefined && checkIp(e.dst) === null && e.state === 'permanent' && (e.flags ?? []).includes('self') ? [{ mac: e.mac.toLowerCase(), dst: e.dst }] : [],
  );
}

function invalidFdb(c: FdbChange): string | null {
  return checkMac(c.mac) ?? checkIp(c.dst) ?? checkIfname(c.dev);
}

/** Pure: the `bridge -batch` line for one change. */
export function fdbBatchLine(c: FdbChange): string {
  switch (c.op) {
    case 'replace':
      return `fdb replace ${c.mac} dev ${c.dev} dst ${c.dst} self permanent`;
    case 'delete':
      return `fdb del ${c.mac} dev ${c.dev} dst ${c.dst} self`;
  }
}

export function createFdbOps(run: ExecFn, netns?: string): FdbOps {
  return {
    async listPermanent(dev) {
      const res = await run('bridge', ['-json', 'fdb', 'show', 'dev', dev], { ...nsOpt(netns), allowFailure: true });
      return res.code === 0 ? parseFdbList(res.stdout) : [];
    },
    async apply(changes) {
      const failed: FdbFailure[] = [];
      const sent = changes.filter((change) => {
        const reason = invalidFdb(change);
        if (reason !== null) failed.push({ change, reason });
        return reason === null;
      });
      if (sent.length === 0) return failed;
      const failures = await runBatchLines(run, 'bridge', [], sent.map(fdbBatchLine), nsOpt(netns));
      for (const f of failures) failed.push({ change: sent[f.index]!, reason: f.reason });
      return failed;
    },
  };
}
