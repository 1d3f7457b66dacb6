import { parseIp } from '../lib/ipv4.js';

// Linux interface names: 1-15 bytes, no whitespace, '/' or ':'; '#' and quotes would confuse a batch parser.
const IFNAME = /^[^\s/:#"'\\]{1,15}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Why `name` is not an interface name a batch line may carry, or null. */
export function checkIfname(name: string): string | null {
  return IFNAME.test(name) ? null : `invalid device "${name}"`;
}

/** Why `ip` is not a dotted-quad IPv4 address, or null. */
export function checkIp(ip: string): string | null {
  return parseIp(ip) === null ? `invalid IPv4 address "${ip}"` : null;
}

/** Why `mac` is not a lower-case colon-separated MAC address, or null. */
export function checkMac(mac: string): string | null {
  return MAC.test(mac) ? null : `invalid MAC address "${mac}"`;
}

export function nsOpt(netns: string | undefined): { netns?: string } {
  return netns === undefined ? {} : { netns };
}
