import { TwillError } from '../errors.js';
import type { BackendFactory } from './backend.js';
import { hostGw } from './host-gw/index.js';
import { udp } from './udp/index.js';

/** The backend table: adding a backend touches its folder and this table (style rule 6). */
export const BACKENDS: Readonly<Record<string, BackendFactory>> = Object.freeze({
  [hostGw.type]: hostGw,
  [udp.type]: udp,
});

/** The factory for a (lower-cased) Backend.Type. */
export function backendFactory(type: string): BackendFactory {
  const factory = Object.hasOwn(BACKENDS, type) ? BACKENDS[type] : undefined;
  if (factory) return factory;
  const known = Object.keys(BACKENDS).sort().join(', ');
  throw new TwillError('TWILL_ERR_BACKEND_UNKNOWN', `unknown backend type "${type}" (known: ${known})`, {
    details: { type, known: Object.keys(BACKENDS) },
  });
}
