import { TwillError } from '../errors.js';
import type { BackendFactory } from './backend.js';
import { hostGw } from './host-gw/index.js';
import { udp } from './udp/index.js';
import { vxlan } from './vxlan/index.js';

export type BackendTable = Readonly<Record<string, BackendFactory>>;

/** The backend table: adding a backend touches its folder and this table (style rule 6). */
export const BACKENDS: BackendTable = Object.freeze({
  [hostGw.type]: hostGw,
  [udp.type]: udp,
  [vxlan.type]: vxlan,
});

/** The factory for a (lower-cased) Backend.Type. */
export function backendFactory(type: string, table: BackendTable = BACKENDS): BackendFactory {
  const factory = Object.hasOwn(table, type) ? table[type] : undefined;
  if (factory) return factory;
  const known = Object.keys(table).sort().join(', ');
  throw new TwillError('TWILL_ERR_BACKEND_UNKNOWN', `unknown backend type "${type}" (known: ${known})`, {
    details: { type, known: Object.keys(table) },
  });
}

/**
 * Every backend's flags parsed once, by backend type. `values` holds what was given, by flag
 * name; a flag not given takes its default. A bad value of any backend's flag is an error even
 * when another backend runs, so a typo never waits for a config change to surface.
 */
export function parseBackendFlags(values: Readonly<Record<string, string | undefined>>, table: BackendTable = BACKENDS): Readonly<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const factory of Object.values(table)) {
    const own = Object.fromEntries(factory.flags.map((f) => [f.name, values[f.name] ?? f.default]));
    out[factory.type] = factory.parseFlags(own);
  }
  return Object.freeze(out);
}
