/**
 * Micro-benchmark of the udp data path (figures, not assertions): packets per second through
 * the pure outbound + inbound decisions, and through two data paths over real loopback sockets,
 * in one process. Prints the figures and writes build/udp-bench.json (style rule 15).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { UdpDataPath } from '../../src/backend/udp/data-path.js';
import { openDgramTransport } from '../../src/backend/udp/dgram-transport.js';
import { FakeTun, makeIpv4Packet } from '../support/udp-fakes.js';
import { Forwarder } from '../../src/backend/udp/forward.js';
import { parseCidr } from '../../src/lib/ipv4.js';

const REPORT = new URL('../../build/udp-bench.json', import.meta.url);
const report: Record<string, unknown> = { node: process.version, date: new Date().toISOString() };

const forwarder = (own: string) => new Forwarder({ ownSubnet: parseCidr(own)!, tunAddress: parseCidr(own)!.addr, mtu: 1472 });
const pool = (n: number, size: number) =>
  Array.from({ length: n }, (_, i) => makeIpv4Packet({ src: '10.244.1.5', dst: `10.244.2.${(i % 250) + 1}`, payload: Buffer.alloc(size - 20) }));

function write(name: string, figures: Record<string, unknown>): void {
  report[name] = figures;
  mkdirSync(new URL('.', REPORT), { recursive: true });
  writeFileSync(REPORT, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(`udp-bench ${name}: ${JSON.stringify(figures)}\n`);
}

/** Counts garbage collections while `fn` runs: none means the loop allocated (next to) nothing. */
async function countGcs(fn: () => void): Promise<number> {
  let gcs = 0;
  const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  fn();
  await new Promise((r) => setTimeout(r, 20)); // gc entries are delivered asynchronously
  obs.disconnect();
  return gcs;
}

describe('udp data path benchmark', () => {
  it('pure core: outbound on A, inbound on B, 1400-byte packets, 100 peers', async () => {
    const [a, b] = [forwarder('10.244.1.0/24'), forwarder('10.244.2.0/24')];
    for (let i = 2; i < 102; i++) a.setPeer(parseCidr(`10.244.${i}.0/24`)!, `198.18.0.${i}`);
    b.setPeer(parseCidr('10.244.1.0/24')!, '198.18.0.1');
    const pkts = pool(256, 1400);
    const sums = pkts.map((p) => p.readUInt16BE(10));
    const N = 1_000_000;
    let accepted = 0;
    const run = () => {
      for (let i = 0; i < N; i++) {
        const p = pkts[i & 255]!;
        p[8] = 64; // restore TTL and checksum: each round trip takes 2 off the TTL
        p[10] = sums[i & 255]! >>> 8;
        p[11] = sums[i & 255]! & 0xff;
        if (typeof a.outbound(p) !== 'string' && b.inbound(p, '198.18.0.1') === null) accepted++;
      }
    };
    run(); // warm-up: let the JIT optimize
    const rates: number[] = [];
    let gcs = 0;
    for (let round = 0; round < 3; round++) {
      const t0 = process.hrtime.bigint();
      gcs += await countGcs(run);
      rates.push(N / (Number(process.hrtime.bigint() - t0 - 20_000_000n) / 1e9));
    }
    expect(accepted).toBe(4 * N);
    write('pure-core', { packetsPerSecond: Math.round(Math.max(...rates)), rounds: rates.map(Math.round), gcsIn3MPackets: gcs });
  });

  it('two data paths over loopback sockets (node:dgram), 1400-byte packets, 4 MiB vs kernel-default socket buffers', async () => {
    for (const bufferBytes of [4 * 1024 * 1024, 0]) {
      const ta = await openDgramTransport({ address: '127.0.0.1', port: 0, bufferBytes });
      const tb = await openDgramTransport({ address: '127.0.0.2', port: ta.port, bufferBytes });
      const [fa, fb] = [forwarder('10.244.1.0/24'), forwarder('10.244.2.0/24')];
      const [tunA, tunB] = [new FakeTun(), new FakeTun()];
      fb.setPeer(parseCidr('10.244.1.0/24')!, '127.0.0.1');
      tunB.write = (packets) => packets.length; // count only: keep the fake's copying out of the figure
      const a = new UdpDataPath({ forwarder: fa, tun: tunA, transport: ta, peerPort: ta.port });
      const b = new UdpDataPath({ forwarder: fb, tun: tunB, transport: tb, peerPort: tb.port });
      a.setPeer(parseCidr('10.244.2.0/24')!, '127.0.0.2');
      a.start();
      b.start();
      const templates = pool(32, 1400); // libuv reads at most 32 datagrams per wake-up: more per turn would only overflow the socket
      const t0 = Date.now();
      let sent = 0;
      while (Date.now() - t0 < 1000) {
        const pkts = templates.map((t) => Buffer.from(t)); // fresh buffers per batch, as the addon hands over
        tunA.emit(pkts);
        sent += pkts.length;
        await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setTimeout(r, 100));
      const secs = (Date.now() - t0) / 1000;
      const received = fb.counters.traffic.packetsIn;
      write(bufferBytes ? 'loopback-4MiB-buffers' : 'loopback-default-buffers', { sentPerSecond: Math.round(sent / secs), deliveredPerSecond: Math.round(received / secs), lossPercent: Number((100 * (1 - received / sent)).toFixed(1)) });
      expect(fb.counters.drops['bad-checksum'] + fb.counters.drops['unknown-peer']).toBe(0);
      await Promise.all([a.stop(), b.stop()]);
    }
  }, 30_000);

  it('socket buffers: loss while the receiving event loop stalls 20 ms in every 100 ms, sender in a worker at ~40k/s', async () => {
    for (const bufferBytes of [4 * 1024 * 1024, 0]) {
      const rx = await openDgramTransport({ address: '127.0.0.1', port: 0, bufferBytes });
      let received = 0;
      rx.start({ onDatagram: () => received++, onSendError: () => undefined, onSocketError: () => undefined });
      const sent = await floodFromWorker(rx.port, 1000, () => {
        const until = Date.now() + 20;
        while (Date.now() < until); // a GC pause or a busy agent, as the socket sees it
      });
      await new Promise((r) => setTimeout(r, 100));
      await rx.close();
      write(bufferBytes ? 'stall-4MiB-buffers' : 'stall-default-buffers', { sent, received, lossPercent: Number((100 * (1 - received / sent)).toFixed(1)) });
    }
  }, 30_000);
});

/** Sends 1400-byte datagrams to 127.0.0.1:port from a worker thread (40 per ms) for `ms`; stalls this thread every 100 ms. */
async function floodFromWorker(port: number, ms: number, stall: () => void): Promise<number> {
  const code = `const { parentPort, workerData } = require('node:worker_threads');
    const s = require('node:dgram').createSocket('udp4'); const b = Buffer.alloc(1400); let n = 0; const end = Date.now() + workerData.ms;
    const tick = () => { for (let i = 0; i < 40; i++, n++) s.send(b, workerData.port, '127.0.0.1');
      if (Date.now() < end) setTimeout(tick, 1); else setTimeout(() => { parentPort.postMessage(n); s.close(); }, 50); };
    tick();`;
  const worker = new Worker(code, { eval: true, workerData: { port, ms } });
  const timer = setInterval(stall, 100);
  const sent = await new Promise<number>((resolve) => worker.once('message', resolve));
  clearInterval(timer);
  await worker.terminate();
  return sent;
}
