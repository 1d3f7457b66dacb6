import { unlink } from 'node:fs/promises';
import { isTwillError, TwillError } from '../errors.js';
import { TWILL_ROUTE_PROTO, type Kernel } from '../kernel/index.js';
import { FORWARD_CHAIN, FORWARD_TABLE, parseForwardChain } from './forward-rules.js';
import { replaceScript, TWILL_NFT_FAMILY, TWILL_NFT_TABLE } from './nft-ruleset.js';

export interface CleanupTargets {
  readonly subnetFile: string;
  /** The conflist the agent wrote (--cni-conf-file), if it writes one. */
  readonly cniConfFile?: string | null;
  /** Removes what the backends made (their devices), before the routes; returns what it removed. */
  readonly backends: () => Promise<Readonly<Record<string, unknown>>>;
}

/** What was removed; zero and false mean there was nothing of that kind. Backends add their own fields. */
export interface CleanupSummary {
  readonly nftTable: boolean;
  readonly forwardRules: number;
  readonly routes: number;
  readonly subnetFile: boolean;
  readonly cniConfFile: boolean;
  readonly [backendPart: string]: unknown;
}

/**
 * `twill agent --cleanup`: removes exactly what twill adds on a node and nothing else: its nft
 * table, the FORWARD rules carrying its comment, what its backends made (the udp TUN device),
 * routes with protocol 116, subnet.env and the conflist it wrote. The etcd lease is left to expire (the node may come back and want it).
 */
export async function cleanupNode(kernel: Kernel, targets: CleanupTargets): Promise<CleanupSummary> {
  const nftTable = await removeTable(kernel);
  const forwardRules = await removeForwardRules(kernel);
  const backends = await targets.backends();
  const routes = await removeRoutes(kernel);
  const subnetFile = await removeFile(targets.subnetFile);
  const cniConfFile = targets.cniConfFile ? await removeFile(targets.cniConfFile) : false;
  return { ...backends, nftTable, forwardRules, routes, subnetFile, cniConfFile };
}

/** True when the file was there. */
function removeFile(path: string): Promise<boolean> {
  return unlink(path).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
}

/** A missing program means nothing of its kind was ever added. */
const absentIfMissing = <T>(fallback: T) => (err: unknown): T => {
  if (isTwillError(err, 'TWILL_ERR_KERNEL_NOT_FOUND')) return fallback;
  throw err;
};

async function removeTable(kernel: Kernel): Promise<boolean> {
  const tables = await kernel.nft.tables(TWILL_NFT_FAMILY).catch(absentIfMissing<string[]>([]));
  if (!tables.includes(TWILL_NFT_TABLE)) return false;
  await kernel.nft.apply(replaceScript(null));
  return true;
}

async function removeForwardRules(kernel: Kernel): Promise<number> {
  const listing = await kernel.iptables.listChain(FORWARD_TABLE, FORWARD_CHAIN).catch(absentIfMissing(''));
  const { owned } = parseForwardChain(listing);
  for (const spec of owned) await kernel.iptables.delete(FORWARD_TABLE, FORWARD_CHAIN, spec);
  return owned.length;
}

async function removeRoutes(kernel: Kernel): Promise<number> {
  const routes = await kernel.routes.list(TWILL_ROUTE_PROTO);
  if (routes.length === 0) return 0;
  const { failed } = await kernel.routes.apply(routes.map((r) => ({ op: 'delete', dst: r.dst, proto: TWILL_ROUTE_PROTO })));
  if (failed.length > 0) {
    const reasons = failed.map((f) => `${f.change.dst}: ${f.reason}`);
    throw new TwillError('TWILL_ERR_KERNEL_COMMAND', `cleanup: ${failed.length} route(s) not removed (${reasons.join('; ')})`, { details: { failed: reasons } });
  }
  return routes.length;
}
