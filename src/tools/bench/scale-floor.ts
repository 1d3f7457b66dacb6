/**
 * The kernel's floor for N routes: in a fresh namespace (a veth pair inside it, the peers'
 * segment on one end), one `ip -batch` of N `route add <peer subnet> via <peer PublicIP> dev veth0
 * proto 116` lines, timed from our side (so the process start counts, as it does for the agent),
 * then one of the N deletes. The same routes host-gw programs for the same fake peers. The
 * namespace is removed after each repeat, also on a failure or an interrupt.
 */
import { TWILL_ROUTE_PROTO } from '../../kernel/index.js';
import { addNetns, deleteNetns, ipBatch } from '../kernel/netns.js';
import { nsName, roles } from '../lab/naming.js';
import { fakePublicIP, fakeSubnet, PEER_SEGMENT_HOST } from '../scripts/scale-peers.js';
import type { FloorSample } from './scale-results.js';

const DEV = 'veth0';

/** Pure: the batch lines: set up the namespace, add the N routes, delete them. */
export function floorLines(peers: number): { setup: string[]; add: string[]; del: string[] } {
  const idx = Array.from({ length: peers }, (_, i) => i);
  return {
    setup: ['link set lo up', `link add ${DEV} type veth peer name veth1`, `addr add ${PEER_SEGMENT_HOST} dev ${DEV}`, `link set ${DEV} up`, 'link set veth1 up'],
    add: idx.map((i) => `route add ${fakeSubnet(i)} via ${fakePublicIP(i)} dev ${DEV} proto ${TWILL_ROUTE_PROTO}`),
    del: idx.map((i) => `route del ${fakeSubnet(i)} proto ${TWILL_ROUTE_PROTO}`),
  };
}

export function floorNamespace(lab: string): string {
  return nsName(lab, roles.floor());
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

export async function measureFloor(lab: string, peers: number, repeat: number, signal?: AbortSignal): Promise<FloorSample> {
  const ns = floorNamespace(lab);
  const lines = floorLines(peers);
  const addMs: number[] = [];
  const deleteMs: number[] = [];
  for (let r = 0; r < repeat; r++) {
    signal?.throwIfAborted();
    await deleteNetns(ns);
    await addNetns(ns);
    try {
      await ipBatch(ns, lines.setup);
      addMs.push(await timed(() => ipBatch(ns, lines.add)));
      deleteMs.push(await timed(() => ipBatch(ns, lines.del)));
    } finally {
      await deleteNetns(ns);
    }
  }
  return { peers, addMs, deleteMs };
}
