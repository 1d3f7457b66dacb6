import ipaddr from 'ipaddr.js';

/** An IPv4 network: `addr` is the network address as an unsigned 32-bit integer. */
export interface Ipv4Net {
  readonly addr: number;
  readonly len: number;
}

/** Parses a dotted-quad IPv4 address to an unsigned 32-bit integer; null if it is not one. */
export function parseIp(text: string): number | null {
  if (!ipaddr.IPv4.isValidFourPartDecimal(text)) return null;
  const [a, b, c, d] = ipaddr.IPv4.parse(text).octets as [number, number, number, number];
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

export function formatIp(ip: number): string {
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
}

export function mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** Parses `a.b.c.d/len`. `strict` rejects host bits set (10.0.0.1/8). */
export function parseCidr(text: string, strict = true): Ipv4Net | null {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text.trim());
  if (!m) return null;
  const ip = parseIp(m[1]!);
  const len = Number(m[2]);
  if (ip === null || len > 32) return null;
  const addr = (ip & mask(len)) >>> 0;
  if (strict && addr !== ip) return null;
  return { addr, len };
}

export function formatCidr(net: Ipv4Net): string {
  return `${formatIp(net.addr)}/${net.len}`;
}

export function size(net: Ipv4Net): number {
  return 2 ** (32 - net.len);
}

export function contains(net: Ipv4Net, ip: number): boolean {
  return ((ip & mask(net.len)) >>> 0) === net.addr;
}

export function containsNet(outer: Ipv4Net, inner: Ipv4Net): boolean {
  return inner.len >= outer.len && contains(outer, inner.addr);
}

export function sameNet(a: Ipv4Net, b: Ipv4Net): boolean {
  return a.addr === b.addr && a.len === b.len;
}

/** The first host address of a subnet (the CNI bridge's gateway address). */
export function firstHost(net: Ipv4Net): number {
  return (net.addr + 1) >>> 0;
}
