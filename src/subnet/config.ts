import { z } from 'zod';
import { TwillError } from '../errors.js';
import { canonicalKeys } from '../lib/canonical-keys.js';
import { contains, formatCidr, formatIp, mask, parseCidr, parseIp, sameNet, size, type Ipv4Net } from '../lib/ipv4.js';
import type { NetworkConfig } from './types.js';

// Field names are matched case-insensitively, as flannel's JSON decoding does.
const TOP_FIELDS = ['Network', 'SubnetLen', 'SubnetMin', 'SubnetMax', 'Backend', 'EnableIPv4', 'EnableIPv6', 'IPv6Network', 'IPv6SubnetLen', 'IPv6SubnetMin', 'IPv6SubnetMax'];

const shape = z.object({
  Network: z.string({ error: 'is required and must be an IPv4 CIDR string' }),
  SubnetLen: z.number().int().optional(),
  SubnetMin: z.string().optional(),
  SubnetMax: z.string().optional(),
  Backend: z.record(z.string(), z.unknown()).optional(),
  EnableIPv6: z.boolean().optional(),
});

function invalid(field: string, problem: string): TwillError {
  return new TwillError('TWILL_ERR_CONFIG_INVALID', `network config: ${field} ${problem}`, { details: { field } });
}

/** Parses and validates the network config JSON, filling in flannel's defaults. */
export function parseNetworkConfig(text: string): NetworkConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new TwillError('TWILL_ERR_CONFIG_INVALID', `network config: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('(top level)', 'must be a JSON object');
  const parsed = shape.safeParse(canonicalKeys(raw as Record<string, unknown>, TOP_FIELDS));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw invalid(issue.path.join('.') || '(top level)', issue.message.replace(/^Invalid input: /, 'must be '));
  }
  const cfg = parsed.data;
  if (cfg.EnableIPv6) throw invalid('EnableIPv6', 'is not supported by twill yet (IPv4 only)');
  const network = parseNetwork(cfg.Network);
  const subnetLen = parseSubnetLen(network, cfg.SubnetLen);
  const [subnetMin, subnetMax] = parseRange(network, subnetLen, cfg.SubnetMin, cfg.SubnetMax);
  return Object.freeze({ network, subnetLen, subnetMin, subnetMax, backend: parseBackend(cfg.Backend) });
}

function parseNetwork(text: string): Ipv4Net {
  // flannel accepts host bits in Network (Go's ParseCIDR masks them); so do we.
  const net = parseCidr(text, false);
  if (!net) throw invalid('Network', `"${text}" is not an IPv4 CIDR (like 10.244.0.0/16)`);
  if (net.len > 28) throw invalid('Network', `${formatCidr(net)} is too small: it must be /28 or larger`);
  return net;
}

function parseSubnetLen(network: Ipv4Net, given: number | undefined): number {
  if (given === undefined) return network.len <= 22 ? 24 : network.len + 2;
  if (given > 30) throw invalid('SubnetLen', `${given} is too long: it must be at most 30`);
  if (given < network.len + 2) throw invalid('SubnetLen', `${given} must be at least Network's prefix + 2 (${network.len + 2})`);
  return given;
}

function parseRange(network: Ipv4Net, subnetLen: number, minText?: string, maxText?: string): [number, number] {
  const step = 2 ** (32 - subnetLen);
  const min = minText === undefined ? network.addr + step : parseBound('SubnetMin', minText, network, subnetLen);
  const max = maxText === undefined ? network.addr + size(network) - step : parseBound('SubnetMax', maxText, network, subnetLen);
  if (min > max) throw invalid('SubnetMin', `${formatIp(min)} is above SubnetMax ${formatIp(max)}`);
  return [min >>> 0, max >>> 0];
}

function parseBound(field: string, text: string, network: Ipv4Net, subnetLen: number): number {
  // Written either as a plain address or as a CIDR of the subnet (flannel writes "10.244.1.0").
  const ip = parseIp(text) ?? parseCidr(text, false)?.addr ?? null;
  if (ip === null) throw invalid(field, `"${text}" is not an IPv4 address`);
  if (!contains(network, ip)) throw invalid(field, `${text} is outside Network ${formatCidr(network)}`);
  if (((ip & mask(subnetLen)) >>> 0) !== ip) throw invalid(field, `${text} is not aligned to a /${subnetLen} subnet`);
  return ip;
}

/** Only Backend.Type is read here; the rest of Backend belongs to the backend it names (its parseOptions). */
function parseBackend(given: Record<string, unknown> | undefined): NetworkConfig['backend'] {
  const raw = Object.freeze(canonicalKeys(given ?? {}, ['Type']));
  const type = raw.Type ?? 'udp';
  if (typeof type !== 'string' || type === '') throw invalid('Backend.Type', 'must be a non-empty string');
  return Object.freeze({ type: type.toLowerCase(), raw });
}

/** The config as flannel would print it back, with defaults made explicit. */
export function describeConfig(cfg: NetworkConfig): Record<string, unknown> {
  return {
    Network: formatCidr(cfg.network),
    SubnetLen: cfg.subnetLen,
    SubnetMin: formatIp(cfg.subnetMin),
    SubnetMax: formatIp(cfg.subnetMax),
    Backend: { ...cfg.backend.raw, Type: cfg.backend.type },
  };
}

/**
 * Where `next` differs from `current`, by flannel's field names, comparing what each config
 * means: `SubnetLen`, `Backend.Type`, a backend's own key as `Backend.<Key>` (matched
 * case-insensitively, as flannel reads them). SubnetMin and SubnetMax count only when one side
 * sets them: their defaults follow Network and SubnetLen, which are named already. Empty when a
 * restart would change nothing.
 */
export function changedFields(current: NetworkConfig, next: NetworkConfig): string[] {
  const changed: string[] = [];
  if (!sameNet(current.network, next.network)) changed.push('Network');
  if (current.subnetLen !== next.subnetLen) changed.push('SubnetLen');
  const [a, b] = [defaultRange(current), defaultRange(next)];
  if (current.subnetMin !== next.subnetMin && !(current.subnetMin === a[0] && next.subnetMin === b[0])) changed.push('SubnetMin');
  if (current.subnetMax !== next.subnetMax && !(current.subnetMax === a[1] && next.subnetMax === b[1])) changed.push('SubnetMax');
  if (current.backend.type !== next.backend.type) changed.push('Backend.Type');
  const before = byLowerKey(current.backend.raw);
  const after = byLowerKey(next.backend.raw);
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    if (key === 'type') continue;
    const [x, y] = [before.get(key), after.get(key)];
    if (stableJson(x?.value) !== stableJson(y?.value)) changed.push(`Backend.${(y ?? x)!.name}`);
  }
  return changed;
}

/** SubnetMin and SubnetMax when the config does not set them (as parseRange fills them in). */
function defaultRange(c: NetworkConfig): [number, number] {
  const step = 2 ** (32 - c.subnetLen);
  return [(c.network.addr + step) >>> 0, (c.network.addr + size(c.network) - step) >>> 0];
}

function byLowerKey(raw: Readonly<Record<string, unknown>>): Map<string, { name: string; value: unknown }> {
  return new Map(Object.entries(raw).map(([name, value]) => [name.toLowerCase(), { name, value }]));
}

/** JSON with object keys sorted, so that key order is no difference. */
function stableJson(v: unknown): string | undefined {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => stableJson(x) ?? 'null').join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>).sort(([k1], [k2]) => (k1 < k2 ? -1 : k1 > k2 ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableJson(x) ?? 'null'}`).join(',')}}`;
}
