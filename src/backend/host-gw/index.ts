import type { BackendFactory } from '../backend.js';
import { createHostGwBackend } from './backend.js';
import { HOST_GW_TYPE } from './route-plan.js';

export { createHostGwBackend, DEFAULT_RESYNC_MS, type HostGwOptions } from './backend.js';

/** host-gw: no device, pods get the underlay MTU, one route per peer via its PublicIP. */
export const hostGw: BackendFactory = {
  type: HOST_GW_TYPE,
  mtu: (ifaceMtu) => ifaceMtu,
  leaseAttrs: (publicIP) => ({ publicIP, publicIPv6: null, backendType: HOST_GW_TYPE }),
  create: (ctx) => createHostGwBackend(ctx),
};
