import { isIPv4 } from 'node:net';
import { TwillError } from '../errors.js';

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export const DEFAULT_STATUS_PORT = 8475;
export const DEFAULT_STATUS_ADDR = `127.0.0.1:${DEFAULT_STATUS_PORT}`;

/** "HOST:PORT" with an IPv4 address or a name (localhost); the port may be omitted (8475). */
export function parseHostPort(flag: string, text: string): HostPort {
  const m = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text.trim());
  const port = m?.[2] === undefined ? DEFAULT_STATUS_PORT : Number(m[2]);
  const host = m?.[1] ?? '';
  const looksNumeric = /^[\d.]+$/.test(host);
  if (!m || port < 1 || port > 65535 || (looksNumeric && !isIPv4(host))) {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `${flag}: "${text}" is not HOST:PORT (e.g. ${DEFAULT_STATUS_ADDR})`, { details: { flag, value: text } });
  }
  return Object.freeze({ host, port });
}

export function formatHostPort(a: HostPort): string {
  return `${a.host}:${a.port}`;
}
