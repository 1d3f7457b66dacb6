import { describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import { describeConfig, parseNetworkConfig } from '../../src/subnet/config.js';
import { formatCidr, formatIp } from '../../src/lib/ipv4.js';

function invalidField(text: string): string {
  try {
    parseNetworkConfig(text);
  } catch (err) {
    if (isTwillError(err, 'TWILL_ERR_CONFIG_INVALID')) return String(err.details.field);
    throw err;
  }
  throw new Error(`accepted: ${text}`);
}

describe('network config', () => {
  it('fills in flannel defaults for a /16', () => {
    const cfg = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}');
    expect(formatCidr(cfg.network)).toBe('10.244.0.0/16');
    expect(cfg.subnetLen).toBe(24);
    expect(formatIp(cfg.subnetMin)).toBe('10.244.1.0');
    expect(formatIp(cfg.subnetMax)).toBe('10.244.255.0');
    expect(cfg.backend).toMatchObject({ type: 'host-gw' });
  });

  it('uses prefix+2 as SubnetLen for networks smaller than /22', () => {
    const cfg = parseNetworkConfig('{"Network":"10.1.0.0/24"}');
    expect(cfg.subnetLen).toBe(26);
    expect(formatIp(cfg.subnetMin)).toBe('10.1.0.64');
    expect(formatIp(cfg.subnetMax)).toBe('10.1.0.192');
  });

  it('defaults a missing Backend to udp and lower-cases the type', () => {
    expect(parseNetworkConfig('{"Network":"10.0.0.0/8"}').backend.type).toBe('udp');
    expect(parseNetworkConfig('{"Network":"10.0.0.0/8","Backend":{"Type":"HOST-GW"}}').backend.type).toBe('host-gw');
  });

  it('matches field names case-insensitively', () => {
    const cfg = parseNetworkConfig('{"network":"10.5.0.0/16","subnetlen":26,"backend":{"type":"udp","port":9000}}');
    expect(cfg.subnetLen).toBe(26);
    expect(cfg.backend.type).toBe('udp');
    // The rest of Backend is the backend's to read (its parseOptions), as written.
    expect(cfg.backend.raw).toEqual({ Type: 'udp', port: 9000 });
  });

  it('accepts explicit SubnetMin/SubnetMax inside the network', () => {
    const cfg = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetMin":"10.244.10.0","SubnetMax":"10.244.20.0"}');
    expect(formatIp(cfg.subnetMin)).toBe('10.244.10.0');
    expect(formatIp(cfg.subnetMax)).toBe('10.244.20.0');
  });

  it.each([
    ['{}', 'Network'],
    ['{"Network":"banana"}', 'Network'],
    ['{"Network":"10.0.0.0/29"}', 'Network'],
    ['{"Network":"10.244.0.0/16","SubnetLen":31}', 'SubnetLen'],
    ['{"Network":"10.244.0.0/16","SubnetLen":17}', 'SubnetLen'],
    ['{"Network":"10.244.0.0/16","SubnetLen":"24"}', 'SubnetLen'],
    ['{"Network":"10.244.0.0/16","SubnetMin":"10.245.0.0"}', 'SubnetMin'],
    ['{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.5"}', 'SubnetMin'],
    ['{"Network":"10.244.0.0/16","SubnetMax":"10.244.1.7"}', 'SubnetMax'],
    ['{"Network":"10.244.0.0/16","SubnetMin":"10.244.9.0","SubnetMax":"10.244.8.0"}', 'SubnetMin'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":""}}', 'Backend.Type'],
    ['{"Network":"10.244.0.0/16","Backend":"udp"}', 'Backend'],
    ['{"Network":"10.244.0.0/16","EnableIPv6":true}', 'EnableIPv6'],
    ['[1]', '(top level)'],
  ])('rejects %s naming %s', (text, field) => {
    expect(invalidField(text)).toBe(field);
  });

  it('rejects text that is not JSON with a clear message', () => {
    expect(() => parseNetworkConfig('{Network: 1')).toThrow(/not valid JSON/);
  });

  it('prints the config back with its defaults explicit', () => {
    expect(describeConfig(parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}'))).toEqual({
      Network: '10.244.0.0/16',
      SubnetLen: 24,
      SubnetMin: '10.244.1.0',
      SubnetMax: '10.244.255.0',
      Backend: { Type: 'host-gw' },
    });
  });
});
