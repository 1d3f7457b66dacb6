import { describe, expect, it } from 'vitest';
import { validateNetworkConfig } from '../../src/agent/network-config.js';
import { backendFactory } from '../../src/backend/index.js';
import { vxlan } from '../../src/backend/vxlan/index.js';
import { classifyLease, normalizeMac, vtepMac } from '../../src/backend/vxlan/vtep.js';
import { isTwillError } from '../../src/errors.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import { formatLeaseValue } from '../../src/subnet/lease-format.js';
import type { Lease } from '../../src/subnet/types.js';

function failure(fn: () => unknown): { code: string; field: unknown; message: string } {
  try {
    fn();
  } catch (err) {
    if (isTwillError(err)) return { code: err.code, field: err.details['field'], message: err.message };
    throw err;
  }
  throw new Error('expected a TwillError');
}

const DEFAULTS = { vni: 1, port: 0, gbp: false, learning: false, directRouting: false, mtu: null };

describe('vxlan options (Backend.*)', () => {
  it('has flannel defaults', () => {
    expect(vxlan.parseOptions({ Type: 'vxlan' })).toEqual(DEFAULTS);
    expect(backendFactory('vxlan')).toBe(vxlan);
    expect(vxlan.traits).toEqual({ crossesRouters: true, carriesPackets: false });
  });

  it('reads every field case-insensitively', () => {
    expect(vxlan.parseOptions({ type: 'vxlan', vni: 42, PORT: 4789, gbp: true, learning: true, directrouting: true, Mtu: 9000 })).toEqual({
      vni: 42, port: 4789, gbp: true, learning: true, directRouting: true, mtu: 9000,
    });
  });

  it.each([
    ['VNI', -1], ['VNI', 16777215], ['VNI', 1.5], ['VNI', '1'],
    ['Port', 70000], ['Port', -1], ['Port', '8472'],
    ['GBP', 'yes'], ['Learning', 1], ['DirectRouting', 'true'],
    ['MTU', 100], ['MTU', 1500.5],
  ])('refuses %s %j, naming Backend.%s', (field, value) => {
    const f = failure(() => vxlan.parseOptions({ Type: 'vxlan', [field]: value }));
    expect(f).toMatchObject({ code: 'TWILL_ERR_CONFIG_INVALID', field: `Backend.${field}` });
    expect(f.message).toContain(JSON.stringify(value));
  });

  it('is checked by the config validation (agent and `twill config set`)', () => {
    const f = failure(() => validateNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","VNI":"x"}}'));
    expect(f).toMatchObject({ code: 'TWILL_ERR_CONFIG_INVALID', field: 'Backend.VNI' });
    expect(validateNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan","DirectRouting":true}}').backend.type).toBe('vxlan');
  });

  it('gives pods the MTU minus 50, of Backend.MTU when set', () => {
    expect(vxlan.mtu(1500, DEFAULTS)).toBe(1450);
    expect(vxlan.mtu(1500, { ...DEFAULTS, mtu: 9000 })).toBe(8950);
  });
});

describe('vxlan lease and VtepMAC', () => {
  it('writes flannel\'s lease JSON byte for byte', () => {
    const mac = vtepMac('10.0.0.5', 1);
    expect(formatLeaseValue(vxlan.leaseAttrs('10.0.0.5', DEFAULTS))).toBe(
      `{"PublicIP":"10.0.0.5","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}}`,
    );
    expect(formatLeaseValue(vxlan.leaseAttrs('10.0.0.5', { ...DEFAULTS, vni: 7 }))).toContain('"BackendData":{"VNI":7,"VtepMAC":"');
  });

  it('derives a stable, locally administered unicast MAC from PublicIP and VNI', () => {
    const mac = vtepMac('198.18.0.11', 1);
    expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(vtepMac('198.18.0.11', 1)).toBe(mac); // the same after a restart or a reboot
    expect(mac).toBe('9a:1e:0d:ab:a0:86'); // pinned: a change here changes every node's MAC on upgrade
    const first = parseInt(mac.slice(0, 2), 16);
    expect(first & 1).toBe(0); // unicast
    expect(first & 2).toBe(2); // locally administered
    expect(vtepMac('198.18.0.12', 1)).not.toBe(mac);
    expect(vtepMac('198.18.0.11', 2)).not.toBe(mac);
    const many = new Set(Array.from({ length: 1000 }, (_, i) => vtepMac(`10.${i >> 8}.${i & 255}.1`, 1)));
    expect(many.size).toBe(1000);
  });

  it('reads peers\' MACs as Go does, and reports leases it cannot program', () => {
    expect(normalizeMac('C6:D2:32:6F:8F:44')).toBe('c6:d2:32:6f:8f:44');
    expect(normalizeMac('c6-d2-32-6f-8f-44')).toBe('c6:d2:32:6f:8f:44');
    for (const bad of ['c6:d2:32:6f:8f', 'zz:d2:32:6f:8f:44', 5, null]) expect(normalizeMac(bad)).toBeNull();
    const self = { subnet: '10.244.1.0/24', publicIP: '198.18.0.11' };
    const lease = (subnet: string, publicIP: string, backendType?: string, backendData?: unknown): Lease => ({
      subnet: parseCidr(subnet)!,
      attrs: { publicIP, publicIPv6: null, ...(backendType ? { backendType } : {}), ...(backendData ? { backendData } : {}) },
      etcdLeaseId: '1',
      modRevision: '1',
    });
    expect(classifyLease(lease('10.244.2.0/24', '198.18.0.12', 'vxlan', { VNI: 9, VtepMAC: 'C6:D2:32:6F:8F:44' }), self)).toEqual({
      kind: 'peer',
      peer: { subnet: '10.244.2.0/24', publicIP: '198.18.0.12', vtepMac: 'c6:d2:32:6f:8f:44', gateway: '10.244.2.0' },
    });
    expect(classifyLease(lease('10.244.1.0/24', '198.18.0.99', 'vxlan', { VtepMAC: 'c6:d2:32:6f:8f:44' }), self)).toEqual({ kind: 'self' });
    expect(classifyLease(lease('10.244.3.0/24', '198.18.0.13', 'host-gw'), self)).toEqual({ kind: 'foreign', backendType: 'host-gw' });
    expect(classifyLease(lease('10.244.3.0/24', '198.18.0.13'), self)).toEqual({ kind: 'foreign', backendType: null });
    expect(classifyLease(lease('10.244.3.0/24', '198.18.0.13', 'vxlan', { VNI: 1 }), self)).toMatchObject({ kind: 'invalid' });
  });
});
