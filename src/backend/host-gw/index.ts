import { z } from 'zod';
import type { BackendFactory } from '../backend.js';
import { parseBackendOptions } from '../options.js';
import { createHostGwBackend } from './backend.js';
import { HOST_GW_TYPE } from './route-plan.js';

export { createHostGwBackend, DEFAULT_L2_MAX_AGE_MS, DEFAULT_RESYNC_MS, type HostGwOptions } from './backend.js';

/** host-gw reads no Backend.* field but Type. */
const SCHEMA = z.object({});

/** host-gw: no device, pods get the underlay MTU, one route per peer via its PublicIP. */
export const hostGw: BackendFactory<Record<string, never>, Record<string, never>> = {
  type: HOST_GW_TYPE,
  traits: { crossesRouters: false, carriesPackets: false },
  parseOptions: (raw) => parseBackendOptions(SCHEMA, raw),
  flags: [],
  parseFlags: () => ({}),
  mtu: (ifaceMtu) => ifaceMtu,
  leaseAttrs: (publicIP) => ({ publicIP, publicIPv6: null, backendType: HOST_GW_TYPE }),
  create: (ctx) => createHostGwBackend(ctx),
};
