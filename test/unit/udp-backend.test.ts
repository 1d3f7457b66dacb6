import { afterEach, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/backend/backend.js';
import type { BackendStatus } from '../../src/status/types.js';
import { backendFactory } from '../../src/backend/index.js';
import { FakeTun, FakeUdpNetwork, makeIpv4Packet } from '../support/udp-fakes.js';
import { PUMP_STATS, type PumpStat, type UdpPump } from '../../src/kernel/udp-pump.js';
import { createUdpBackend, udp } from '../../src/backend/udp/index.js';
import type { OpenTunRequest } from '../../src/backend/udp/tun-open.js';
import { isTwillError, TwillError } from '../../src/errors.js';
import type { ExecFn, Kernel } from '../../src/kernel/index.js';
import { fakeKernel } from '../support/fake-kernel.js';
import { tunBatchLines } from '../../src/kernel/tun-config.js';
import type { TunOffload } from '../../src/kernel/tun-types.js';
import { createLogger } from '../../src/log.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import type { Lease, LeaseEvent } from '../../src/subnet/types.js';

function lease(subnet: string, publicIP: string, backendType?: string): Lease {
  return { subnet: parseCidr(subnet)!, attrs: { publicIP, publicIPv6: null, ...(backendType ? { backendType } : {}) }, etcdLeaseId: '7', modRevision: '1' };
}
const added = (l: Lease): LeaseEvent => ({ type: 'added', lease: l });
const removed = (l: Lease): LeaseEvent => ({ type: 'removed', lease: l });

const A = lease('10.244.1.0/24', '198.18.0.11');
const B = lease('10.244.2.0/24', '198.18.0.12');

interface Call {
  cmd: string;
  args: readonly string[];
  input?: string;
  netns?: string;
}

const started: Backend[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((b) => b.stop()));
});

/** A udp backend on fakes: TUN, UDP network, exec (ip/sysctl) and /proc writes are all recorded. */
function setup(own: Lease, opts: { network?: FakeUdpNetwork; netns?: string; execFails?: boolean; tunOffload?: TunOffload; openTun?: (req: OpenTunRequest) => FakeTun } = {}) {
  const network = opts.network ?? new FakeUdpNetwork();
  const calls: Call[] = [];
  const procWrites: string[] = [];
  const tuns: FakeTun[] = [];
  const requests: OpenTunRequest[] = [];
  const exec = (async (cmd, args, o = {}) => {
    calls.push({ cmd, args, ...(o.input === undefined ? {} : { input: o.input }), ...(o.netns === undefined ? {} : { netns: o.netns }) });
    if (opts.execFails) throw new TwillError('TWILL_ERR_KERNEL_COMMAND', 'ip exited 2: RTNETLINK answers: Operation not permitted');
    return { stdout: '', stderr: '', code: 0 };
  }) as ExecFn;
  const openTun = (req: OpenTunRequest): FakeTun => {
    requests.push(req);
    return opts.openTun ? opts.openTun(req) : tuns[tuns.push(new FakeTun(req.name, req.offload)) - 1]!;
  };
  const logger = createLogger({ level: 'silent' });
  const kernel: Kernel = { ...fakeKernel().kernel, netns: opts.netns };
  const config = { network: parseCidr('10.244.0.0/16')!, subnetLen: 24, subnetMin: 0, subnetMax: 0, backend: { type: 'udp', raw: {} } };
  const iface = { name: 'eth0', address: own.attrs.publicIP, mtu: 1500 };
  const backend = createUdpBackend(
    { logger, network: config, ownLease: own, iface, kernel, options: { port: 8285 }, flags: { tunName: 'twill0', tunOffload: opts.tunOffload ?? 'gro', datapath: 'dgram' } },
    { openTun, openTransport: network.opener(own.attrs.publicIP), tunConfig: { exec, writeProc: async (path, data) => void procWrites.push(`${path}=${data.trim()}`) }, now: () => new Date('2025-01-02T03:04:05.000Z') },
  );
  started.push(backend);
  return { backend, calls, procWrites, tuns, requests, network };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};
const peerOf = (s: BackendStatus, subnet: string) => s.peers.find((p) => p.subnet === subnet);

describe('udp factory', () => {
  it('is in the backend table, takes 28 bytes off the MTU and publishes no BackendType', () => {
    expect(backendFactory('udp')).toBe(udp);
    expect(udp.mtu(1500, { port: 8285 })).toBe(1472);
    expect(udp.leaseAttrs('198.18.0.11', { port: 8285 })).toEqual({ publicIP: '198.18.0.11', publicIPv6: null });
  });
});

describe('udp backend', () => {
  it('start() opens the TUN and configures it with one ip batch (after accept_local and disable_ipv6)', async () => {
    const { backend, calls, procWrites, tuns } = setup(A);
    await backend.start();
    expect(tuns.map((t) => t.name)).toEqual(['twill0']);
    expect(calls).toEqual([{ cmd: 'ip', args: ['-batch', '-'], input: `${tunBatchLines({ dev: 'twill0', address: '10.244.1.0', mtu: 1472, txqueuelen: 1000, network: '10.244.0.0/16' }).join('\n')}\n` }]);
    expect(calls[0]!.input).toBe('address replace 10.244.1.0/32 dev twill0\nlink set dev twill0 mtu 1472 txqueuelen 1000 up\nroute replace 10.244.0.0/16 dev twill0 proto 116\n');
    expect(procWrites).toEqual(['/proc/sys/net/ipv4/conf/twill0/accept_local=1', '/proc/sys/net/ipv6/conf/twill0/disable_ipv6=1']);
    expect(backend.status()).toMatchObject({ type: 'udp', mtu: 1472, device: 'twill0', routes: 0, peers: [], details: { tunnel: { port: 8285, packetsIn: 0, packetsOut: 0, icmpSent: 0, groSuperPackets: 0, groSegments: 0 } } });
  });

  it("opens the TUN with the context's offload, 'gro' when none is given", async () => {
    const byDefault = setup(A);
    const off = setup(B, { network: byDefault.network, tunOffload: 'off' });
    await Promise.all([byDefault.backend.start(), off.backend.start()]);
    expect(byDefault.requests.map((r) => [r.name, r.offload])).toEqual([['twill0', 'gro']]);
    expect(off.requests.map((r) => [r.name, r.offload])).toEqual([['twill0', 'off']]);
  });

  it('falls back to no offload when the kernel refuses virtio headers (EINVAL), and only then', async () => {
    const einval = (syscall: string) => new TwillError('TWILL_ERR_KERNEL_TUN', 'cannot create TUN device', { details: { name: 'twill0', syscall, errno: 'EINVAL' } });
    const refusing = setup(A, { openTun: (req) => { if (req.offload === 'gro') throw einval('ioctl TUNSETIFF'); return new FakeTun(req.name, req.offload); } });
    await refusing.backend.start();
    expect(refusing.requests.map((r) => r.offload)).toEqual(['gro', 'off']);
    expect(refusing.backend.status().device).toBe('twill0');

    const busy = setup(B, { openTun: () => { throw new TwillError('TWILL_ERR_KERNEL_TUN', 'in use', { details: { errno: 'EBUSY' } }); } });
    await expect(busy.backend.start()).rejects.toMatchObject({ code: 'TWILL_ERR_KERNEL_TUN' });
    expect(busy.requests.map((r) => r.offload)).toEqual(['gro']);
  });

  it('runs the configuration inside the kernel namespace when there is one', async () => {
    const { backend, calls, procWrites } = setup(A, { netns: 'twl-a' });
    await backend.start();
    expect(calls.map((c) => [c.cmd, c.args.join(' '), c.netns])).toEqual([
      ['sysctl', '-q -e -w net/ipv4/conf/twill0/accept_local=1 net/ipv6/conf/twill0/disable_ipv6=1', 'twl-a'],
      ['ip', '-batch -', 'twl-a'],
    ]);
    expect(procWrites).toEqual([]);
  });

  it('takes udp leases (no BackendType, or "udp") as peers; ignores its own, other backends and bad PublicIPs', async () => {
    const { backend } = setup(A);
    await backend.applyPeerChanges([added(B), added(lease('10.244.3.0/24', '198.19.5.20', 'udp')), added(lease('10.244.4.0/24', '198.18.0.14', 'host-gw')), added(A), added(lease('10.244.9.0/24', '198.18.0.11')), added(lease('10.244.5.0/24', 'nope'))]);
    expect(backend.status().peers.map((p) => [p.subnet, p.state])).toEqual([
      ['10.244.2.0/24', 'pending'],
      ['10.244.3.0/24', 'pending'],
      ['10.244.5.0/24', 'error'],
    ]);
    await backend.start();
    const s = backend.status();
    expect(s.routes).toBe(2);
    expect(peerOf(s, '10.244.2.0/24')).toEqual({ subnet: '10.244.2.0/24', publicIP: '198.18.0.12', backendType: null, state: 'programmed', since: '2025-01-02T03:04:05.000Z', traffic: { packetsIn: 0, bytesIn: 0, packetsOut: 0, bytesOut: 0 } });
    expect(peerOf(s, '10.244.5.0/24')).toMatchObject({ state: 'error', reason: 'invalid PublicIP "nope"' });
  });

  it('two backends exchange packets; status counts per peer, per direction and drops by reason', async () => {
    const a = setup(A);
    const b = setup(B, { network: a.network });
    await Promise.all([a.backend.start(), b.backend.start()]);
    await a.backend.applyPeerChanges([added(B)]);
    await b.backend.applyPeerChanges([added(A)]);
    const pkt = makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7' });
    a.tuns[0]!.emit([pkt, makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.200.1' })]);
    await settle();
    expect(b.tuns[0]!.written).toHaveLength(1);
    const sa = a.backend.status();
    expect(peerOf(sa, '10.244.2.0/24')!.traffic).toEqual({ packetsOut: 1, bytesOut: pkt.length, packetsIn: 0, bytesIn: 0 });
    expect(sa.details?.drops).toMatchObject({ 'no-route': 1, 'unknown-peer': 0 });
    expect(sa.details?.tunnel).toMatchObject({ packetsOut: 1, icmpSent: 1 });
    expect(peerOf(b.backend.status(), '10.244.1.0/24')!.traffic).toMatchObject({ packetsIn: 1, bytesIn: pkt.length });
  });

  it("a removed lease stops the peer's traffic within the same event", async () => {
    const a = setup(A);
    const b = setup(B, { network: a.network });
    await Promise.all([a.backend.start(), b.backend.start()]);
    await a.backend.applyPeerChanges([added(B)]);
    await b.backend.applyPeerChanges([added(A)]);
    await a.backend.applyPeerChanges([removed(B)]);
    expect(a.backend.status().peers).toEqual([]);
    b.tuns[0]!.emit([makeIpv4Packet({ src: '10.244.2.7', dst: '10.244.1.5' })]);
    a.tuns[0]!.emit([makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7' })]);
    await settle();
    expect(b.tuns[0]!.written).toHaveLength(0);
    expect(a.backend.status().details?.drops).toMatchObject({ 'unknown-peer': 1, 'no-route': 1 });
    expect(a.tuns[0]!.written.map((p) => p[20])).toEqual([3]); // ICMP net unreachable back to the pod
  });

  it('fails with TWILL_ERR_UDP_PORT_IN_USE when the port is taken, and closes the device it made', async () => {
    const network = new FakeUdpNetwork();
    network.bind('198.18.0.11', 8285);
    const { backend, tuns } = setup(A, { network });
    const err: unknown = await backend.start().catch((e: unknown) => e);
    expect(isTwillError(err, 'TWILL_ERR_UDP_PORT_IN_USE')).toBe(true);
    expect(tuns[0]!.closed).toBe(true);
  });

  it('fails with TWILL_ERR_UDP_TUN when the device cannot be configured or made', async () => {
    const bad = setup(A, { execFails: true });
    const err = (await bad.backend.start().catch((e: unknown) => e)) as TwillError;
    expect(isTwillError(err, 'TWILL_ERR_UDP_TUN')).toBe(true);
    expect(isTwillError(err.cause, 'TWILL_ERR_KERNEL_COMMAND')).toBe(true);
    expect(bad.tuns[0]!.closed).toBe(true);
    const plain = setup(A, { openTun: () => { throw new Error('addon exploded'); } });
    expect(isTwillError(await plain.backend.start().catch((e: unknown) => e), 'TWILL_ERR_UDP_TUN')).toBe(true);
    const coded = setup(A, { openTun: () => { throw new TwillError('TWILL_ERR_KERNEL_TUN_PERMISSION', 'no CAP_NET_ADMIN'); } });
    expect(isTwillError(await coded.backend.start().catch((e: unknown) => e), 'TWILL_ERR_KERNEL_TUN_PERMISSION')).toBe(true);
  });

  it('stop() closes the device and the socket; later changes are ignored', async () => {
    const { backend, tuns, network } = setup(A);
    await backend.start();
    await backend.stop();
    expect(tuns[0]!.closed).toBe(true);
    expect(() => network.bind('198.18.0.11', 8285)).not.toThrow();
    await backend.applyPeerChanges([added(B)]);
    expect(backend.status().peers).toEqual([]);
  });
});

describe('udp backend, native data path: offloads the kernel refuses', () => {
  it('runs without each refused offload, warns once naming it, and /v1/status shows which are on', async () => {
    const lines: { level: number; msg: string; offload?: string; datapath?: string }[] = [];
    const logger = createLogger({ level: 'info', stream: { write: (s: string) => lines.push(JSON.parse(s) as (typeof lines)[number]) } });
    const stats = Object.fromEntries(PUMP_STATS.map((n) => [n, 0])) as Record<PumpStat, number>;
    const calls: string[] = [];
    // The socket took UDP_SEGMENT but not UDP_GRO; the device took virtio headers but not TSO.
    const pump = {
      start: () => calls.push('start'),
      stop: () => calls.push('stop'),
      close: () => calls.push('close'),
      setPeers: () => new Float64Array(0),
      counters: () => ({ stats, drops: new Float64Array(15), traffic: new Float64Array(0), offloads: { udpGro: false, udpSegment: true } }),
    } as unknown as UdpPump;
    const exec = (async () => ({ stdout: '', stderr: '', code: 0 })) as ExecFn;
    const config = { network: parseCidr('10.244.0.0/16')!, subnetLen: 24, subnetMin: 0, subnetMax: 0, backend: { type: 'udp', raw: {} } };
    const backend = createUdpBackend(
      { logger, network: config, ownLease: A, iface: { name: 'eth0', address: A.attrs.publicIP, mtu: 1500 }, kernel: fakeKernel().kernel, options: { port: 8285 }, flags: { tunName: 'twill0', tunOffload: 'gro', datapath: 'native' } },
      { openTun: (req) => new FakeTun(req.name, req.offload), openPump: () => pump, tunConfig: { exec, writeProc: async () => undefined } },
    );
    started.push(backend);
    await backend.start();
    expect(calls).toEqual(['start']);
    const warned = lines.filter((l) => l.level === 40).map((l) => l.offload);
    expect(warned).toEqual(['tunTso', 'tunUso', 'udpGro']);
    expect(lines.find((l) => l.msg === 'udp backend started')?.datapath).toBe('native');
    expect(backend.status().details).toMatchObject({ datapath: 'native', offloads: { tunVnetHdr: true, tunTso: false, tunUso: false, udpGro: false, udpSegment: true } });
  });
});
