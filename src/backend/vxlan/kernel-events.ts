import { inMainTable, type KernelEvent } from '../../kernel/index.js';

export interface Watched {
  /** `flannel.<VNI>` */
  readonly device: string;
  /** The underlay interface. */
  readonly iface: string;
  readonly proto: number;
  /** With DirectRouting, a change to the node's other routes may move an L2 verdict. */
  readonly directRouting: boolean;
}

/**
 * Pure. Whether a kernel event (`ip monitor route link address`) calls for a pass now rather than
 * at the next tick: our device or the underlay changed (deleted, down, an address moved), or a
 * route of ours was deleted. Our own additions echo back as events and are not worth a pass;
 * neighbour and FDB changes are not in this feed, the timed pass finds them.
 */
export function callsForPass(e: KernelEvent, w: Watched): boolean {
  if (e.kind === 'device') return e.dev === w.device || e.dev === w.iface;
  if (!inMainTable(e)) return false;
  if (e.route.proto === w.proto) return e.deleted;
  return w.directRouting;
}
