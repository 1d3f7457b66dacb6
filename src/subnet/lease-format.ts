import { formatCidr, formatIp, parseCidr, parseIp, type Ipv4Net } from '../lib/ipv4.js';
import type { LeaseAttrs } from './types.js';

// flannel's key pattern; keys that do not match it are ignored, not errors.
const SUBNET_KEY = /^(\d+\.\d+\.\d+\.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/;

export function subnetsPrefix(etcdPrefix: string): string {
  return `${etcdPrefix.replace(/\/+$/, '')}/subnets/`;
}

export function configKey(etcdPrefix: string): string {
  return `${etcdPrefix.replace(/\/+$/, '')}/config`;
}

/** `<prefix>/subnets/10.244.1.0-24` */
export function leaseKey(etcdPrefix: string, subnet: Ipv4Net): string {
  return `${subnetsPrefix(etcdPrefix)}${formatIp(subnet.addr)}-${subnet.len}`;
}

/** The subnet named by a lease key, or null for a key that is not a lease. */
export function parseLeaseKey(etcdPrefix: string, key: string): Ipv4Net | null {
  const prefix = subnetsPrefix(etcdPrefix);
  if (!key.startsWith(prefix)) return null;
  const m = SUBNET_KEY.exec(key.slice(prefix.length));
  if (!m) return null;
  return parseCidr(`${m[1]}/${m[2]}`, true);
}

/** flannel's compact lease JSON, fields in flannel's order. */
export function formatLeaseValue(attrs: LeaseAttrs): string {
  const out: Record<string, unknown> = { PublicIP: attrs.publicIP, PublicIPv6: attrs.publicIPv6 };
  if (attrs.backendType !== undefined) out.BackendType = attrs.backendType;
  if (attrs.backendData !== undefined) out.BackendData = attrs.backendData;
  return JSON.stringify(out);
}

/** Reads a lease value; tolerates extra fields; null when PublicIP is missing or not IPv4. */
export function parseLeaseValue(text: string): LeaseAttrs | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const v = raw as Record<string, unknown>;
  if (typeof v.PublicIP !== 'string' || parseIp(v.PublicIP) === null) return null;
  return {
    publicIP: v.PublicIP,
    publicIPv6: typeof v.PublicIPv6 === 'string' ? v.PublicIPv6 : null,
    ...(typeof v.BackendType === 'string' ? { backendType: v.BackendType } : {}),
    ...(v.BackendData !== undefined && v.BackendData !== null ? { backendData: v.BackendData } : {}),
  };
}

export function describeSubnet(subnet: Ipv4Net): string {
  return formatCidr(subnet);
}
