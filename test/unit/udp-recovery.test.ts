/**
 * The udp backend when its TUN device fails (deleted by hand, read error): the status carries
 * the problem, readiness (/readyz, twill_ready) turns false with the reason, the device is
 * recreated after a backoff and configured again, the socket and the peers are kept, traffic
 * flows again and the problem clears. All on in-memory fakes, no root.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { Telemetry } from '../../src/agent/telemetry.js';
import { buildApi } from '../../src/api/app.js';
import { renderAgentStatus } from '../../src/cli/status-render.js';
import type { Backend } from '../../src/backend/backend.js';
import { createUdpBackend } from '../../src/backend/udp/index.js';
import type { OpenTunRequest } from '../../src/backend/udp/tun-open.js';
import { TwillError } from '../../src/errors.js';
import type { ExecFn } from '../../src/kernel/index.js';
import { fakeKernel } from '../support/fake-kernel.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import type { BackendStatus, StatusSource } from '../../src/status/types.js';
import type { Lease, LeaseEvent } from '../../src/subnet/types.js';
import { eventually, memoryLogger } from '../support/logger.js';
import { FakeTun, FakeUdpNetwork, makeIpv4Packet } from '../support/udp-fakes.js';

function lease(subnet: string, publicIP: string): Lease {
  return { subnet: parseCidr(subnet)!, attrs: { publicIP, publicIPv6: null }, etcdLeaseId: '7', modRevision: '1' };
}
const added = (l: Lease): LeaseEvent => ({ type: 'added', lease: l });
const A = lease('10.244.1.0/24', '198.18.0.11');
const B = lease('10.244.2.0/24', '198.18.0.12');

/** What the addon reports once the device is deleted under it (measured: EBADFD, within ~50 ms). */
const deleted = (name = 'twill0') => new TwillError('TWILL_ERR_KERNEL_TUN', `reading TUN device ${name} failed (EBADFD); the data path stopped`, { details: { name, errno: 'EBADFD' } });

const backends: Backend[] = [];
afterEach(async () => {
  await Promise.all(backends.splice(0).map((b) => b.stop()));
});

interface Options {
  readonly network?: FakeUdpNetwork;
  /** Makes the next opens fail (a name still taken, say) while it returns true. */
  readonly openFails?: () => boolean;
  readonly recovery?: { initialMs: number; maxMs: number };
  /** Awaited by every `ip -batch` (the device's configuration): a test holds one there. */
  readonly configuring?: () => Promise<void>;
}

/** A udp backend on fakes; every device it opens is kept with the request that opened it. */
function setup(own: Lease, opts: Options = {}) {
  const network = opts.network ?? new FakeUdpNetwork();
  const opened: { tun: FakeTun; req: OpenTunRequest }[] = [];
  const batches: string[] = [];
  const exec = (async (_cmd, args, o = {}) => {
    if (args[0] === '-batch') {
      await opts.configuring?.();
      batches.push(o.input ?? '');
    }
    return { stdout: '', stderr: '', code: 0 };
  }) as ExecFn;
  const openTun = (req: OpenTunRequest): FakeTun => {
    if (opts.openFails?.()) throw new TwillError('TWILL_ERR_KERNEL_TUN', `cannot create TUN device "${req.name}": the name is invalid or taken by an interface that is not a TUN device`, { details: { name: req.name, errno: 'EINVAL' } });
    const tun = new FakeTun(req.name, req.offload);
    opened.push({ tun, req });
    return tun;
  };
  const log = memoryLogger();
  const config = { network: parseCidr('10.244.0.0/16')!, subnetLen: 24, subnetMin: 0, subnetMax: 0, backend: { type: 'udp', raw: {} } };
  const backend = createUdpBackend(
    { logger: log.logger, network: config, ownLease: own, iface: { name: 'eth0', address: own.attrs.publicIP, mtu: 1500 }, kernel: fakeKernel().kernel, options: { port: 8285 }, flags: { tunName: 'twill0', tunOffload: 'off', datapath: 'dgram' } },
    { openTun, openTransport: network.opener(own.attrs.publicIP), tunConfig: { exec, writeProc: async () => undefined }, recovery: opts.recovery ?? { initialMs: 20, maxMs: 80 } },
  );
  backends.push(backend);
  const current = () => opened[opened.length - 1]!;
  return { backend, network, opened, batches, log, current };
}

/** Two backends that know each other, started. */
async function pair(opts: Omit<Options, 'network'> = {}) {
  const a = setup(A, opts);
  const b = setup(B, { network: a.network });
  await Promise.all([a.backend.start(), b.backend.start()]);
  await a.backend.applyPeerChanges([added(B)]);
  await b.backend.applyPeerChanges([added(A)]);
  return { a, b };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};
const aToB = () => makeIpv4Packet({ src: '10.244.1.5', dst: '10.244.2.7' });
const bToA = () => makeIpv4Packet({ src: '10.244.2.7', dst: '10.244.1.5' });

/** The agent's readiness over one backend: every other condition met, as in a running agent. */
function readiness(backend: Backend) {
  const tel = new Telemetry({ nodeName: 'n1', etcdEndpoints: ['http://e:2379'], version: 'v' });
  tel.leaseAcquired(A, 3600);
  tel.subnetFileWritten();
  tel.backendProgrammed();
  const source: StatusSource = { status: () => tel.status({ state: 'running', iface: null, config: null, backend: backend.status(), watchRevision: null }), live: () => true };
  return source;
}

let app: FastifyInstance | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

describe('udp backend: a failed TUN device', () => {
  it('sets the problem (not ready, with the reason), recreates and reconfigures the device, keeps socket and peers, and clears it', async () => {
    const { a, b } = await pair({ recovery: { initialMs: 300, maxMs: 600 } });
    const source = readiness(a.backend);
    const metrics = createMetrics({ status: source.status, version: 't', backends: [], defaultMetrics: false });
    app = buildApi({ status: source, metrics: metrics.registry, logger: a.log.logger });
    expect((await app.inject('/readyz')).statusCode).toBe(200);
    const first = a.current();

    first.req.onError(deleted());
    const down: BackendStatus = a.backend.status();
    expect(down.problem).toBe('TUN device twill0 failed (EBADFD)');
    expect(down.device).toBeNull();
    expect(first.tun.closed).toBe(true);
    const ready = await app.inject('/readyz');
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ ready: false, waitingFor: ['backend'], reason: 'backend: TUN device twill0 failed (EBADFD)' });
    expect(source.status()).toMatchObject({ ready: false, reason: 'backend: TUN device twill0 failed (EBADFD)', backend: { problem: 'TUN device twill0 failed (EBADFD)' } });
    expect(await metrics.registry.metrics()).toMatch(/^twill_ready 0$/m);
    expect(renderAgentStatus(source.status())).toContain('state    running, NOT READY (waiting for backend): backend: TUN device twill0 failed (EBADFD)');

    // While it is down, a datagram from B is counted (nowhere to write it), never a crash.
    b.current().tun.emit([bToA()]);
    await settle();
    expect(a.backend.status().details?.drops).toMatchObject({ 'tun-write-failed': 1 });
    expect(a.opened).toHaveLength(1); // the backoff has not elapsed yet

    await eventually(() => a.backend.status().problem === undefined, 2000, 'the device recreated');
    expect(a.opened).toHaveLength(2);
    expect(a.batches).toHaveLength(2); // configured again: address, MTU, up, route
    expect(a.batches[1]).toBe(a.batches[0]);
    const s = a.backend.status();
    expect(s).toMatchObject({ device: 'twill0', routes: 1, details: { tunnel: { deviceRecreated: 1 } } });
    expect(s.peers.map((p) => [p.subnet, p.state])).toEqual([['10.244.2.0/24', 'programmed']]);
    expect((await app.inject('/readyz')).json()).toEqual({ ready: true, waitingFor: [] });
    expect(() => a.network.bind('198.18.0.11', 8285)).toThrow(); // the same socket still holds the port

    // Traffic both ways through the new device, with the peer table as it was.
    const fresh = a.current().tun;
    fresh.emit([aToB()]);
    b.current().tun.emit([bToA()]);
    await settle();
    expect(b.current().tun.written).toHaveLength(1);
    expect(fresh.written).toHaveLength(1);
    const lines = a.log.lines().filter((l) => l.component === 'udp' && /data path is (down|back)/.test(String(l.msg)));
    expect(lines.map((l) => l.msg)).toEqual([
      'the udp data path is down: the TUN device failed; recreating it with backoff',
      'the udp data path is back: TUN device recreated and configured',
    ]);
  });

  it('keeps retrying with growing waits while the device cannot be made, saying why, then recovers', async () => {
    let blocked = false;
    const { a } = await pair({ openFails: () => blocked, recovery: { initialMs: 10, maxMs: 40 } });
    blocked = true;
    const t0 = Date.now();
    a.current().req.onError(deleted());
    const failures = () => Number(/recreating it failed (\d+) time\(s\)/.exec(a.backend.status().problem ?? '')?.[1] ?? 0);
    await eventually(() => failures() >= 4, 3000, 'four failed attempts');
    // Waits of about 10, 20, 40, 40 ms (±25%): at least 0.75 × 110 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(80);
    expect(a.backend.status().problem).toMatch(/^TUN device twill0 failed \(EBADFD\); recreating it failed \d+ time\(s\), last: cannot create TUN device "twill0": the name is invalid or taken/);
    blocked = false;
    await eventually(() => a.backend.status().problem === undefined, 2000, 'the device recreated once the name is free');
    expect(a.opened).toHaveLength(2);
    // One line when it went down, one when it came back: the failed attempts are not logged above debug.
    expect(a.log.lines().filter((l) => l.component === 'udp' && (l.level as number) >= 30 && /data path/.test(String(l.msg)))).toHaveLength(2);
  });

  it('ignores a late error of a device it already replaced, and retries when the new one fails while it is configured', async () => {
    let hold: Promise<void> | null = null;
    let release = (): void => undefined;
    const { a } = await pair({ configuring: () => hold ?? Promise.resolve() });
    const first = a.current();
    first.req.onError(deleted());
    first.req.onError(deleted()); // the addon may report twice: one outage
    await eventually(() => a.backend.status().problem === undefined, 2000, 'the first recovery');
    first.req.onError(deleted()); // the old device again: nothing happens
    expect(a.backend.status().problem).toBeUndefined();
    expect(a.opened).toHaveLength(2);

    // The second device fails; the third fails while it is being configured (not yet attached).
    hold = new Promise((r) => (release = r));
    a.current().req.onError(deleted());
    await eventually(() => a.opened.length === 3, 2000, 'a third device');
    a.current().req.onError(deleted());
    hold = null;
    release();
    await eventually(() => a.backend.status().problem === undefined, 2000, 'a fourth device');
    expect(a.opened).toHaveLength(4);
    expect(a.opened.slice(0, 3).every((o) => o.tun.closed)).toBe(true);
    expect(a.backend.status().details?.tunnel).toMatchObject({ deviceRecreated: 2 });
  });

  it('stop() during an outage ends the retries at once and opens nothing more', async () => {
    const { a } = await pair({ recovery: { initialMs: 60_000, maxMs: 60_000 } });
    a.current().req.onError(deleted());
    const t0 = Date.now();
    await a.backend.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(a.opened).toHaveLength(1);
    expect(() => a.network.bind('198.18.0.11', 8285)).not.toThrow(); // the socket is closed
  });
});
