import { describe, expect, it } from 'vitest';
import { validateNetworkConfig } from '../../src/agent/network-config.js';
import { BACKENDS, parseBackendFlags } from '../../src/backend/index.js';
import { udp } from '../../src/backend/udp/index.js';
import { isTwillError } from '../../src/errors.js';

function failure(fn: () => unknown): { code: string; field: unknown; message: string } {
  try {
    fn();
  } catch (err) {
    if (isTwillError(err)) return { code: err.code, field: err.details['field'], message: err.message };
    throw err;
  }
  throw new Error('expected a TwillError');
}

describe('each backend parses its own Backend.* options', () => {
  it('udp: Port defaults to 8285 and is read case-insensitively', () => {
    expect(udp.parseOptions({ Type: 'udp' })).toEqual({ port: 8285, directRouting: false });
    expect(udp.parseOptions({ type: 'udp', port: 9000, directrouting: true })).toEqual({ port: 9000, directRouting: true });
  });

  it.each([70000, 0, 1.5, '8285'])('udp: refuses Port %j, naming Backend.Port', (port) => {
    const f = failure(() => udp.parseOptions({ Port: port }));
    expect(f).toMatchObject({ code: 'TWILL_ERR_CONFIG_INVALID', field: 'Backend.Port' });
    expect(f.message).toContain(JSON.stringify(port));
  });

  it('the config validation (agent and `twill config set`) runs the named backend\'s parser', () => {
    const f = failure(() => validateNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"udp","Port":70000}}'));
    expect(f).toMatchObject({ code: 'TWILL_ERR_CONFIG_INVALID', field: 'Backend.Port' });
    // host-gw has no Port: another backend's field is not its business.
    expect(validateNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw","Port":70000}}').backend.type).toBe('host-gw');
  });
});

describe('each backend defines its own flags', () => {
  it('parses every backend\'s flags with defaults, keyed by backend type', () => {
    expect(parseBackendFlags({})).toEqual({ 'host-gw': {}, udp: { tunName: 'twill0', tunOffload: 'gro', datapath: 'native' }, vxlan: {} });
    expect(parseBackendFlags({ 'tun-name': 'flannel0', 'tun-offload': 'off' })['udp']).toEqual({ tunName: 'flannel0', tunOffload: 'off', datapath: 'native' });
  });

  it('refuses a bad value (from a TWILL_* variable, which commander does not check) by its flag name', () => {
    expect(failure(() => parseBackendFlags({ 'tun-name': 'a/b' }))).toMatchObject({ code: 'TWILL_ERR_OPTION_INVALID' });
    expect(failure(() => parseBackendFlags({ 'tun-offload': 'tso' })).message).toContain('--tun-offload');
  });

  it('flag names are unique across the table (they share one command line)', () => {
    const names = Object.values(BACKENDS).flatMap((f) => f.flags.map((x) => x.name));
    expect(new Set(names).size).toBe(names.length);
  });
});
