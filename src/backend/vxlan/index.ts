import type { Kernel } from '../../kernel/index.js';
import type { BackendFactory } from '../backend.js';
import { createVxlanBackend } from './backend.js';
import { registerVxlanMetrics } from './metrics.js';
import { parseVxlanOptions, type VxlanOptions } from './options.js';
import { describeVxlanStatus } from './status.js';
import { VXLAN_OVERHEAD, VXLAN_TYPE, vtepMac, vxlanLeaseAttrs } from './vtep.js';

export { createVxlanBackend, DEFAULT_VXLAN_RESYNC_MS, type VxlanBackendOptions } from './backend.js';
export { deviceSpec } from './device.js';

/** vxlan: the kernel's VXLAN device `flannel.<VNI>`, flannel's per-peer entries, MTU − 50. */
export const vxlan: BackendFactory<VxlanOptions, Record<string, never>> = {
  type: VXLAN_TYPE,
  traits: { crossesRouters: true, carriesPackets: false },
  parseOptions: parseVxlanOptions,
  flags: [],
  parseFlags: () => ({}),
  mtu: (ifaceMtu, options) => (options.mtu ?? ifaceMtu) - VXLAN_OVERHEAD,
  leaseAttrs: (publicIP, options) => vxlanLeaseAttrs(publicIP, options.vni),
  create: (ctx) => createVxlanBackend(ctx),
  cleanup: (kernel) => cleanupVxlan(kernel),
  registerMetrics: registerVxlanMetrics,
  describeStatus: describeVxlanStatus,
};

/**
 * `twill agent --cleanup`: deletes the VXLAN devices twill made, and nothing else: named
 * `flannel.<id>` after their own VXLAN id, and carrying the MAC twill derives for their local
 * address and id (a flanneld-made device has a random one). Their neighbours and FDB entries go
 * with them; the proto-116 routes are the shared cleanup's.
 */
export async function cleanupVxlan(kernel: Kernel): Promise<Readonly<Record<string, unknown>>> {
  const removed: string[] = [];
  for (const link of await kernel.vxlan.list()) {
    const ours = link.vni !== undefined && link.name === `flannel.${link.vni}` && link.local !== undefined && link.mac === vtepMac(link.local, link.vni);
    if (!ours) continue;
    await kernel.vxlan.remove(link.name);
    removed.push(link.name);
  }
  return { vxlanDevices: removed };
}
