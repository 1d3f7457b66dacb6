#!/usr/bin/env node
// Micro-benchmark of the TUN addon (not a test): packets per second through src/kernel/tun.ts,
// read and write, in a throw-away namespace (twl-t-tun-bench). Needs root and `npm run build`.
//
//   read:  a UDP flood inside the namespace towards a route via the device; the agent side
//          counts packets delivered to JavaScript (and the kernel's drops at the device).
//   write: JavaScript writes batches of 64 prebuilt UDP packets into the device as fast as
//          write() takes them (the kernel then runs IP input for each, in the write call).
//
// Usage: node scripts/tun-bench.mjs [seconds=3] [report=build/tun-bench.json]
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';

const { openTun } = await import('../dist/kernel/tun.js').catch(() => {
  console.error('tun-bench: dist/ is missing; run "npm run build" first');
  process.exit(2);
});

const NS = 'twl-t-tun-bench';
const SECONDS = Number(process.argv[2] ?? 3);
const REPORT = process.argv[3] ?? 'build/tun-bench.json';
const ip = (...args) => execFileSync('ip', args, { encoding: 'utf8' });

// Sender: bursts of 256 sends (a send that completes at once calls back on nextTick, which
// would starve the loop), yielding between bursts so SIGTERM gets through; prints its count.
const FLOOD = `const s = require('dgram').createSocket('udp4'); const b = Buffer.alloc(64); let n = 0;
process.on('SIGTERM', () => { console.log(n); process.exit(0); });
(function burst() { for (let k = 0; k < 256; k++) s.send(b, 5001, '10.99.1.5', () => n++); setImmediate(burst); })();`;

function linkStats(name) {
  const [link] = JSON.parse(ip('-n', NS, '-json', '-s', 'link', 'show', name));
  return link.stats64;
}

async function benchRead(dev) {
  let packets = 0;
  let batches = 0;
  dev.start((p) => {
    packets += p.length;
    batches++;
  });
  const sender = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', FLOOD], { stdio: ['ignore', 'pipe', 'inherit'] });
  let sentText = '';
  sender.stdout.on('data', (b) => (sentText += b));
  await new Promise((r) => setTimeout(r, 500)); // warm-up
  const [p0, b0, k0, c0, t0] = [packets, batches, linkStats(dev.name), process.cpuUsage(), process.hrtime.bigint()];
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const [p1, b1, k1, c1, t1] = [packets, batches, linkStats(dev.name), process.cpuUsage(c0), process.hrtime.bigint()];
  sender.kill('SIGTERM');
  await new Promise((r) => sender.on('close', r));
  const secs = Number(t1 - t0) / 1e9;
  return {
    packetsPerSecond: Math.round((p1 - p0) / secs),
    meanBatch: Number(((p1 - p0) / Math.max(1, b1 - b0)).toFixed(1)),
    // CPU of this process (JS thread + reader thread) per delivered packet: the figure that
    // does not depend on how much of the 2 cores the sender and other load leave over.
    cpuNsPerPacket: Math.round(((c1.user + c1.system) * 1000) / Math.max(1, p1 - p0)),
    cpuShare: Number(((c1.user + c1.system) / 1e6 / secs).toFixed(2)),
    kernelTxPerSecond: Math.round((k1.tx.packets - k0.tx.packets) / secs),
    kernelDropped: k1.tx.dropped - k0.tx.dropped,
    senderTotal: Number(sentText.trim()) || null,
  };
}

function checksum(b) {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i] << 8) + (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** IPv4/UDP 10.99.1.5:7000 -> 10.99.0.1:9 (no listener), UDP checksum 0 (none). */
function udpPacket(payload) {
  const p = Buffer.alloc(28 + payload);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[8] = 64;
  p[9] = 17;
  Buffer.from([10, 99, 1, 5, 10, 99, 0, 1]).copy(p, 12);
  p.writeUInt16BE(checksum(p.subarray(0, 20)), 10);
  p.writeUInt16BE(7000, 20);
  p.writeUInt16BE(9, 22);
  p.writeUInt16BE(8 + payload, 24);
  return p;
}

function benchWrite(dev) {
  const batch = Array.from({ length: 64 }, () => udpPacket(64));
  const k0 = linkStats(dev.name);
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const end = t0 + BigInt(SECONDS * 1e9);
  let written = 0;
  let offered = 0;
  while (process.hrtime.bigint() < end) {
    for (let i = 0; i < 100; i++) written += dev.write(batch);
    offered += 100 * batch.length;
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const c1 = process.cpuUsage(c0);
  const k1 = linkStats(dev.name);
  return {
    packetsPerSecond: Math.round(written / secs),
    cpuNsPerPacket: Math.round(((c1.user + c1.system) * 1000) / Math.max(1, written)),
    refused: offered - written,
    kernelRxPerSecond: Math.round((k1.rx.packets - k0.rx.packets) / secs),
    ...dev.stats(),
  };
}

let exitCode = 0;
try {
  execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
} catch {
  /* not there: fine */
}
ip('netns', 'add', NS);
try {
  ip('-n', NS, 'link', 'set', 'lo', 'up');
  const reader = openTun({ name: 'tunr', netns: NS });
  const writer = openTun({ name: 'tunw', netns: NS });
  for (const cmd of [
    'addr add 10.99.0.1/32 dev tunr', 'link set tunr up', 'route add 10.99.1.0/24 dev tunr',
    'addr add 10.99.0.2/32 dev tunw', 'link set tunw up',
  ]) ip('-n', NS, ...cmd.split(' '));
  const read = await benchRead(reader);
  const write = benchWrite(writer);
  reader.close();
  writer.close();
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    seconds: SECONDS,
    read: { ...read, note: 'UDP 64-byte payload flood from node in the namespace; packets delivered to JS' },
    write: { ...write, note: 'batches of 64 IPv4/UDP packets (92 bytes) written from JS; kernel runs IP input per packet' },
  };
  mkdirSync(dirname(REPORT), { recursive: true });
  writeFileSync(REPORT, `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  execFileSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
}
process.exit(exitCode);
