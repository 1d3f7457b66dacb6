import { describe, expect, it } from 'vitest';
import { judgeKernelEvent, type OwnRoutes } from '../../src/backend/host-gw/kernel-events.js';
import { parseKernelEvent, type KernelEvent, type KernelRoute, type RouteChange } from '../../src/kernel/index.js';

/** Lines as `ip -4 -N monitor route link address` printed them (iproute2 6.1, captured in a namespace). */
const CAPTURED = {
  add: '10.5.1.0/24 via 192.168.77.2 dev d0 proto 116 ',
  del: 'Deleted 10.5.2.0/24 via 192.168.77.3 dev d0 proto 116 ',
  connected: '192.168.77.0/24 dev d0 proto 2 scope 253 src 192.168.77.1 ',
  local: 'Deleted 2 192.168.77.1 dev d0 table 255 proto 2 scope 254 src 192.168.77.1 ',
  broadcast: '3 192.168.77.255 dev d0 table 255 proto 2 scope 253 src 192.168.77.1 ',
  link: '3: d0@d1: <BROADCAST,MULTICAST> mtu 1500 qdisc noqueue state DOWN group 0 ',
  linkCont: '    link/[1] 4e:6b:e9:c5:b3:22 brd ff:ff:ff:ff:ff:ff',
  addr: '3: d0    inet 192.168.78.1/24 scope 0 d0',
  addrCont: '       valid_lft forever preferred_lft forever',
  defaultRoute: 'default via 198.18.0.1 dev eth0 proto 3 ',
};

describe('parseKernelEvent', () => {
  it('reads route lines: deleted or not, table, type prefix, default, host routes', () => {
    expect(parseKernelEvent(CAPTURED.add)).toEqual({ kind: 'route', deleted: false, table: 254, route: { dst: '10.5.1.0/24', gateway: '192.168.77.2', dev: 'd0', proto: 116 } });
    expect(parseKernelEvent(CAPTURED.del)).toEqual({ kind: 'route', deleted: true, table: 254, route: { dst: '10.5.2.0/24', gateway: '192.168.77.3', dev: 'd0', proto: 116 } });
    expect(parseKernelEvent(CAPTURED.connected)).toEqual({ kind: 'route', deleted: false, table: 254, route: { dst: '192.168.77.0/24', dev: 'd0', proto: 2 } });
    expect(parseKernelEvent(CAPTURED.local)).toEqual({ kind: 'route', deleted: true, table: 255, route: { dst: '192.168.77.1/32', dev: 'd0', proto: 2 } });
    expect(parseKernelEvent(CAPTURED.broadcast)).toMatchObject({ kind: 'route', table: 255, route: { dst: '192.168.77.255/32' } });
    expect(parseKernelEvent(CAPTURED.defaultRoute)).toMatchObject({ kind: 'route', route: { dst: '0.0.0.0/0', gateway: '198.18.0.1', proto: 3 } });
  });

  it('reads link and address lines as device events, and skips continuation lines and noise', () => {
    expect(parseKernelEvent(CAPTURED.link)).toEqual({ kind: 'device', deleted: false, dev: 'd0' });
    expect(parseKernelEvent(CAPTURED.addr)).toEqual({ kind: 'device', deleted: false, dev: 'd0' });
    expect(parseKernelEvent(`Deleted ${CAPTURED.addr}`)).toEqual({ kind: 'device', deleted: true, dev: 'd0' });
    for (const line of [CAPTURED.linkCont, CAPTURED.addrCont, '', 'fe80::1 dev d0 proto 2', 'garbage here']) expect(parseKernelEvent(line)).toBeNull();
  });
});

describe('judgeKernelEvent (host-gw)', () => {
  const route = (dst: string, gateway: string): KernelRoute => ({ dst, gateway, dev: 'eth0', proto: 116 });
  const own = (model: KernelRoute[], inFlight: RouteChange[] = []): OwnRoutes => ({
    model: new Map(model.map((r) => [r.dst, r])),
    inFlight: new Map(inFlight.map((c) => [c.dst, c])),
    dev: 'eth0',
    proto: 116,
  });
  const ev = (deleted: boolean, r: KernelRoute, table = 254): KernelEvent => ({ kind: 'route', deleted, table, route: r });
  const B = route('10.244.2.0/24', '198.18.0.12');

  it('takes the echoes of its own changes for what they are, before and after the reply', () => {
    expect(judgeKernelEvent(ev(false, B), own([], [{ op: 'replace', dst: B.dst, gateway: '198.18.0.12', dev: 'eth0', proto: 116 }]))).toBe('echo');
    expect(judgeKernelEvent(ev(false, B), own([B]))).toBe('echo');
    expect(judgeKernelEvent(ev(true, B), own([B], [{ op: 'delete', dst: B.dst, proto: 116 }]))).toBe('echo');
    expect(judgeKernelEvent(ev(true, B), own([]))).toBe('echo');
  });

  it('calls drift what it did not do: our route deleted or re-pointed by hand', () => {
    expect(judgeKernelEvent(ev(true, B), own([B]))).toBe('drift');
    expect(judgeKernelEvent(ev(false, route(B.dst, '198.18.0.99')), own([B]))).toBe('drift');
    expect(judgeKernelEvent(ev(false, { ...B, dev: 'eth1' }), own([B]))).toBe('drift');
    expect(judgeKernelEvent(ev(false, B), own([]))).toBe('drift'); // a proto-116 route nobody asked for
  });

  it('calls drift a change to the node’s other routes or to its device; ignores other tables and devices', () => {
    expect(judgeKernelEvent(ev(false, { dst: '198.18.0.0/24', dev: 'eth0', proto: 2 }), own([B]))).toBe('drift');
    expect(judgeKernelEvent({ kind: 'device', deleted: false, dev: 'eth0' }, own([B]))).toBe('drift');
    expect(judgeKernelEvent({ kind: 'device', deleted: false, dev: 'veth1234' }, own([B]))).toBe('ignore');
    expect(judgeKernelEvent(ev(true, { dst: '198.18.0.11/32', dev: 'eth0', proto: 2 }, 255), own([B]))).toBe('ignore');
  });
});
