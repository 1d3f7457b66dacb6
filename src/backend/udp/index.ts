import type { BackendFactory } from '../backend.js';
import { createUdpBackend } from './backend.js';
import { registerUdpMetrics } from './metrics.js';
import { parseUdpFlags, parseUdpOptions, UDP_FLAGS, type UdpFlags, type UdpOptions } from './options.js';
import { UDP_OVERHEAD, UDP_TYPE } from './peers.js';
import { describeUdpStatus } from './status.js';

export { createUdpBackend, type UdpBackendOptions } from './backend.js';

/** udp: a TUN device, pod packets carried as UDP payloads (flannel's wire format), MTU − 28. */
export const udp: BackendFactory<UdpOptions, UdpFlags> = {
  type: UDP_TYPE,
  traits: { crossesRouters: true, carriesPackets: true },
  parseOptions: parseUdpOptions,
  flags: UDP_FLAGS,
  parseFlags: parseUdpFlags,
  mtu: (ifaceMtu) => ifaceMtu - UDP_OVERHEAD,
  // flannel's udp backend writes no BackendType.
  leaseAttrs: (publicIP) => ({ publicIP, publicIPv6: null }),
  create: (ctx) => createUdpBackend(ctx),
  // The TUN device goes with the agent's stop anyway; this catches one left by a crash.
  cleanup: async (kernel, flags) => {
    const { tunName } = flags ?? parseUdpFlags({});
    return { tunDevice: await kernel.links.removeIfKind(tunName, 'tun'), tunName };
  },
  registerMetrics: registerUdpMetrics,
  describeStatus: describeUdpStatus,
};
