import { TwillError } from '../errors.js';
import type { BackendFactory } from './backend.js';
import { hostGw } from './host-gw/index.js';
import { udp } from './udp/index.js';

export type BackendTable = Readonly<Record<string, BackendFactory>>;

/** The backend table: adding a backend touches its folder and this table (style rule 6). */
export const BACKENDS: BackendTable = Object.freeze({
  [hostGw.type]: hostGw,
  [udp.type]: udp,
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
