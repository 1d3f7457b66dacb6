import { z } from 'zod';
import { parseBackendOptions } from '../options.js';

/** flannel's default VNI; the device is `flannel.<VNI>`. */
export const DEFAULT_VNI = 1;
/** `flannel.` and 7 digits fill Linux's 15-character interface names. */
export const MAX_VNI = 9_999_999;

const VNI_ERROR = `must be an integer from 0 to ${MAX_VNI} (the device flannel.<VNI> must fit Linux's 15-character names)`;
const PORT_ERROR = 'must be an integer from 0 (the kernel default, 8472) to 65535';
const BOOL_ERROR = 'must be true or false';

const SCHEMA = z.object({
  VNI: z.int({ error: VNI_ERROR }).min(0, { error: VNI_ERROR }).max(MAX_VNI, { error: VNI_ERROR }).default(DEFAULT_VNI),
  Port: z.int({ error: PORT_ERROR }).min(0, { error: PORT_ERROR }).max(65535, { error: PORT_ERROR }).default(0),
  GBP: z.boolean({ error: BOOL_ERROR }).default(false),
  Learning: z.boolean({ error: BOOL_ERROR }).default(false),
  DirectRouting: z.boolean({ error: BOOL_ERROR }).default(false),
  MTU: z.int({ error: 'must be an integer from 118 to 65535' }).min(118, { error: 'must be an integer from 118 to 65535' }).max(65535, { error: 'must be an integer from 118 to 65535' }).optional(),
});

/** The vxlan backend's `Backend.*` (flannel's names and defaults). */
export interface VxlanOptions {
  readonly vni: number;
  /** 0: the kernel's default port, 8472. */
  readonly port: number;
  readonly gbp: boolean;
  readonly learning: boolean;
  readonly directRouting: boolean;
  /** The MTU the device's is derived from (minus 50); null: the underlay interface's. */
  readonly mtu: number | null;
}

export function parseVxlanOptions(raw: Readonly<Record<string, unknown>>): VxlanOptions {
  const o = parseBackendOptions(SCHEMA, raw);
  return Object.freeze({ vni: o.VNI, port: o.Port, gbp: o.GBP, learning: o.Learning, directRouting: o.DirectRouting, mtu: o.MTU ?? null });
}
