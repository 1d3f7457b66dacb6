import type { BackendFactory } from '../backend.js';
import { createUdpBackend } from './backend.js';
import { UDP_OVERHEAD, UDP_TYPE } from './peers.js';

export { createUdpBackend, type UdpBackendOptions } from './backend.js';

/** udp: a TUN device, pod packets carried as UDP payloads (flannel's wire format), MTU − 28. */
export const udp: BackendFactory = {
  type: UDP_TYPE,
  mtu: (ifaceMtu) => ifaceMtu - UDP_OVERHEAD,
  // flannel's udp backend writes no BackendType.
  leaseAttrs: (publicIP) => ({ publicIP, publicIPv6: null }),
  create: (ctx) => createUdpBackend(ctx),
};
