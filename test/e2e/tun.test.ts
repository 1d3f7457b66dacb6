/**
 * The TUN addon against the real kernel, in namespaces only (twl-t-tun-*): devices are created
 * inside the namespace from this process (which stays where it is), traffic is sent and
 * received inside it, and nothing touches the root namespace.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import { exec } from '../../src/kernel/exec.js';
import { openTun, type TunDeviceWithStats } from '../../src/kernel/tun.js';
import { TcpCoalescer } from '../../src/backend/udp/offload/coalesce.js';
import { ipChecksumValid, referenceTcpChecksum, tcpStream } from '../support/tcp-packets.js';
import { eventually } from '../support/logger.js';
import { createNetns, deleteNetnsByPrefix, nsExec, nsIp } from '../support/netns.js';

const PREFIX = 'twl-t-tun-';
const NS = `${PREFIX}a`;
const ADDON = fileURLToPath(new URL('../../build/Release/twill_tun.node', import.meta.url));
const root = process.getuid?.() === 0;

const open: TunDeviceWithStats[] = [];
function tun(name: string): TunDeviceWithStats {
  const dev = openTun({ name, netns: NS });
  open.push(dev);
  return dev;
}

beforeAll(async () => {
  if (root) await createNetns(PREFIX, [NS]);
});

afterAll(async () => {
  for (const dev of open) dev.close();
  if (root) await deleteNetnsByPrefix(PREFIX);
});

// ---- packets by hand ----

const ip4 = (s: string) => Buffer.from(s.split('.').map(Number));
const ipStr = (b: Buffer, at: number) => [...b.subarray(at, at + 4)].join('.');

function checksum(...parts: Buffer[]): number {
  let sum = 0;
  for (const b of parts) for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) + (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ipv4(src: string, dst: string, proto: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45;
  h.writeUInt16BE(20 + payload.length, 2);
  h[8] = 64; // TTL
  h[9] = proto;
  ip4(src).copy(h, 12);
  ip4(dst).copy(h, 16);
  h.writeUInt16BE(checksum(h), 10);
  return Buffer.concat([h, payload]);
}

function udp(src: string, sport: number, dst: string, dport: number, data: Buffer): Buffer {
  const u = Buffer.alloc(8 + data.length);
  u.writeUInt16BE(sport, 0);
  u.writeUInt16BE(dport, 2);
  u.writeUInt16BE(u.length, 4);
  data.copy(u, 8);
  const pseudo = Buffer.concat([ip4(src), ip4(dst), Buffer.from([0, 17, u.length >> 8, u.length & 0xff])]);
  u.writeUInt16BE(checksum(pseudo, u) || 0xffff, 6);
  return ipv4(src, dst, 17, u);
}

/** An ICMP echo request turned into its reply (addresses swapped, type 0, checksum redone). */
function echoReply(req: Buffer): Buffer {
  const icmp = Buffer.from(req.subarray((req[0]! & 0x0f) * 4));
  icmp[0] = 0;
  icmp.writeUInt16BE(0, 2);
  icmp.writeUInt16BE(checksum(icmp), 2);
  return ipv4(ipStr(req, 16), ipStr(req, 12), 1, icmp);
}

const isIpv4To = (p: Buffer, dst: string) => p.length >= 20 && p[0]! >> 4 === 4 && ipStr(p, 16) === dst;
const udpDport = (p: Buffer) => (p[9] === 17 ? p.readUInt16BE((p[0]! & 0x0f) * 4 + 2) : -1);

/** `node -e SCRIPT` inside the namespace; resolves with its stdout once it exits. */
function nsNode(script: string, args: string[] = [], onLine?: (line: string) => void): Promise<string> {
  const child = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    for (const line of b.toString().split('\n')) if (line) onLine?.(line);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`node in ${NS} exited ${code}: ${out}`));
    });
  });
}

/** Sends N numbered datagrams to 10.99.1.5:PORT, 32 in flight (send errors ignored: the test may close the device). */
const FLOOD = `const s = require('dgram').createSocket('udp4'); const n = +process.argv[1], port = +process.argv[2];
let sent = 0, done = 0; function next() { if (sent === n) return; const b = Buffer.alloc(64); b.writeUInt32BE(sent++);
s.send(b, port, '10.99.1.5', () => (++done === n ? s.close() : next())); } for (let k = 0; k < 32; k++) next();`;

describe.skipIf(!root)('TUN device (addon) in a namespace', () => {
  const rx: Buffer[][] = []; // batches as they arrive
  let dev: TunDeviceWithStats;
  let onBatch: (packets: readonly Buffer[]) => void = () => undefined;

  it('creates tun9 inside the namespace, not in the root namespace', async () => {
    dev = tun('tun9');
    expect(dev.name).toBe('tun9');
    expect((await nsIp(NS, ['link', 'show', 'tun9'])).stdout).toContain('tun9');
    expect((await exec('ip', ['link', 'show', 'tun9'], { allowFailure: true })).code).not.toBe(0);
    // A queue longer than the 2000-packet bursts below: the tests check that the addon loses
    // nothing it is handed, not how far the kernel queue stretches on a loaded machine.
    await nsIp(NS, ['-batch', '-'], 'addr add 10.99.0.1/32 dev tun9\nlink set tun9 txqueuelen 4096\nlink set tun9 up\nroute add 10.99.1.0/24 dev tun9\n');
    dev.start((packets) => {
      rx.push([...packets]);
      onBatch(packets);
    });
  });

  it('reads a ping as IPv4 packets, and pings answered by writes come back', async () => {
    const requests: Buffer[] = [];
    onBatch = (packets) => {
      const echo = packets.filter((p) => isIpv4To(p, '10.99.1.5') && p[9] === 1 && p[20] === 8);
      requests.push(...echo);
      expect(dev.write(echo.map(echoReply))).toBe(echo.length);
    };
    const ping = await nsExec(NS, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', '10.99.1.5'], true);
    expect(requests).toHaveLength(3);
    expect(requests.every((p) => ipStr(p, 12) === '10.99.0.1')).toBe(true);
    expect(ping.stdout).toContain('3 received');
    expect(ping.code).toBe(0);
  });

  it('delivers a hand-built UDP packet written into the device to a socket in the namespace', async () => {
    const before = await rxPackets('tun9');
    const listener = `const s = require('dgram').createSocket('udp4');
      s.on('message', (m, r) => { console.log(JSON.stringify({ m: m.toString(), from: r.address + ':' + r.port })); s.close(); });
      s.bind(9000, '10.99.0.1', () => console.log('ready'));`;
    const packet = udp('10.99.1.5', 7000, '10.99.0.1', 9000, Buffer.from('hello twill'));
    let ready = false;
    const got = nsNode(listener, [], (line) => (ready ||= line === 'ready'));
    await eventually(() => ready, 10_000, 'the listener');
    expect(dev.write([packet])).toBe(1);
    expect(JSON.parse((await got).split('\n')[1]!)).toEqual({ m: 'hello twill', from: '10.99.1.5:7000' });
    expect(await rxPackets('tun9')).toBeGreaterThan(before);
  });

  it('counts a packet the kernel rejects instead of throwing', () => {
    const before = dev.stats().txRejected;
    expect(dev.write([Buffer.from([0x00, 1, 2, 3])])).toBe(0); // not IPv4/IPv6: EINVAL
    expect(dev.stats().txRejected).toBe(before + 1);
  });

  it('hands 2000 fast datagrams over in batches, none lost', async () => {
    const seen = new Set<number>();
    let batches = 0;
    onBatch = (packets) => {
      const mine = packets.filter((p) => isIpv4To(p, '10.99.1.5') && udpDport(p) === 5001);
      if (mine.length > 0) batches++;
      for (const p of mine) seen.add(p.readUInt32BE(28));
    };
    await nsNode(FLOOD, ['2000', '5001']);
    await eventually(() => seen.size === 2000, 10_000, `2000 datagrams (have ${seen.size})`);
    expect(batches).toBeLessThan(2000);
    // Views into one slab stay valid after the callback: the first packets still read right.
    expect(rx.flat().filter((p) => udpDport(p) === 5001)[0]?.readUInt32BE(28)).toBe(0);
  });

  it('refuses bad names, busy names and missing namespaces with coded errors', () => {
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return e;
      }
      throw new Error('did not throw');
    };
    const long = err(() => openTun({ name: 'x'.repeat(20), netns: NS }));
    expect(isTwillError(long, 'TWILL_ERR_KERNEL_TUN')).toBe(true);
    const busy = err(() => openTun({ name: 'tun9', netns: NS }));
    expect(isTwillError(busy, 'TWILL_ERR_KERNEL_TUN') && busy.details['errno']).toBe('EBUSY');
    const notTun = err(() => openTun({ name: 'lo', netns: NS }));
    expect(isTwillError(notTun, 'TWILL_ERR_KERNEL_TUN') && notTun.details['errno']).toBe('EINVAL');
    const noNs = err(() => openTun({ name: 'tun8', netns: `${PREFIX}missing` }));
    expect(isTwillError(noNs, 'TWILL_ERR_KERNEL_TUN') && noNs.details).toMatchObject({ syscall: 'open netns', errno: 'ENOENT' });
  });

  it('closes while packets are arriving: no crash, the device goes, the name can be reused', async () => {
    let closedAt = -1;
    onBatch = () => {
      if (closedAt < 0) {
        closedAt = dev.stats().rxPackets;
        dev.close(); // from inside the callback, mid-flood
      }
    };
    await nsNode(FLOOD, ['20000', '5002']);
    expect(closedAt).toBeGreaterThan(0);
    expect(dev.stats().rxPackets).toBe(closedAt); // nothing delivered after close
    expect(dev.write([udp('10.99.1.5', 1, '10.99.0.1', 2, Buffer.alloc(1))])).toBe(0);
    await eventually(async () => !(await nsIp(NS, ['-json', 'link', 'show'])).stdout.includes('"tun9"'), 5_000, 'tun9 to go');
    const again = tun('tun9');
    expect(again.name).toBe('tun9');
    again.close();
    again.close(); // idempotent
  });

  it('reports a device deleted under it once, through onError, and keeps writes harmless', async () => {
    const errors: unknown[] = [];
    const gone = openTun({ name: 'tun6', netns: NS, onError: (e) => errors.push(e) });
    open.push(gone);
    gone.start(() => undefined);
    await nsIp(NS, ['link', 'del', 'tun6']);
    await eventually(() => errors.length > 0, 5_000, 'onError');
    expect(errors).toHaveLength(1);
    expect(isTwillError(errors[0], 'TWILL_ERR_KERNEL_TUN') && errors[0].details['errno']).toBe('EBADFD');
    expect(gone.write([udp('10.99.1.5', 1, '10.99.0.1', 2, Buffer.alloc(1))])).toBe(0);
    expect(gone.stats().txRejected).toBe(1);
    gone.close();
  });

  it('reads with a reader thread too (readMode thread): 2000 fast datagrams, none lost', async () => {
    const threaded = openTun({ name: 'tun5', netns: NS, readMode: 'thread' });
    open.push(threaded);
    await nsIp(NS, ['-batch', '-'], 'link set tun5 txqueuelen 4096\nlink set tun5 up\nroute add 10.99.5.0/24 dev tun5\n');
    const seen = new Set<number>();
    threaded.start((packets) => {
      for (const p of packets) if (isIpv4To(p, '10.99.5.5') && udpDport(p) === 5003) seen.add(p.readUInt32BE(28));
    });
    await nsNode(FLOOD.replace("'10.99.1.5'", "'10.99.5.5'"), ['2000', '5003']);
    await eventually(() => seen.size === 2000, 10_000, `2000 datagrams (have ${seen.size})`);
    expect(threaded.stats().rxBatches).toBeLessThan(2000);
    threaded.close();
  });

  it('reads adaptively (the default): a backlog moves reading to the thread, quiet moves it back, nothing is lost', async () => {
    const dev = tun('tun4');
    await nsIp(NS, ['-batch', '-'], 'link set tun4 txqueuelen 4096\nlink set tun4 up\nroute add 10.99.4.0/24 dev tun4\n');
    // Queued before reading starts: the first wake-ups all find full batches.
    await nsNode(FLOOD.replace("'10.99.1.5'", "'10.99.4.5'"), ['2000', '5004']);
    const seen = new Set<number>();
    let total = 0;
    dev.start((packets) => {
      for (const p of packets) {
        if (!isIpv4To(p, '10.99.4.5') || udpDport(p) !== 5004) continue;
        seen.add(p.readUInt32BE(28));
        total++;
      }
    });
    await eventually(() => seen.size === 2000, 10_000, `2000 datagrams (have ${seen.size})`);
    expect(dev.stats().readsToThread).toBeGreaterThanOrEqual(1);
    await eventually(() => dev.stats().readsToLoop >= 1, 5_000, 'reading back on the loop after 50 ms of quiet');
    await nsNode(FLOOD.replace("'10.99.1.5'", "'10.99.4.5'"), ['1', '5004']); // one more, read by the loop
    await eventually(() => total === 2001, 5_000, `a datagram after the switch back (have ${total})`);
  });

  it('takes a merged TCP super-packet (offload gro): the kernel forwards it and another TUN reads the original segments', async () => {
    const gro = openTun({ name: 'tun10', netns: NS, offload: 'gro' });
    const plain = tun('tun11');
    open.push(gro);
    await nsExec(NS, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']);
    await nsIp(NS, ['-batch', '-'], 'link set tun10 up\nlink set tun11 up\nroute add 10.99.10.0/24 dev tun10\nroute add 10.99.11.0/24 dev tun11\n');
    const segments = tcpStream(12, 1200, { seq: 1000, src: '10.99.10.5', dst: '10.99.11.5' });
    const coalescer = new TcpCoalescer();
    for (const seg of segments) coalescer.add(seg);
    const batch = coalescer.take();
    expect(batch.packets).toHaveLength(1);
    const got: Buffer[] = [];
    plain.start((packets) => got.push(...packets.filter((p) => p[9] === 6).map((p) => Buffer.from(p))));
    expect(gro.write(batch.packets, batch.segmentSizes)).toBe(1);
    await eventually(() => got.length >= 12, 5_000, `12 segments out of tun11 (have ${got.length})`);
    expect(got.map((p) => p.readUInt32BE(24))).toEqual(segments.map((p) => p.readUInt32BE(24)));
    for (const [i, p] of got.entries()) {
      expect(p.subarray(40).equals(segments[i]!.subarray(40))).toBe(true);
      expect(p[8]).toBe(63); // forwarded once
      expect(ipChecksumValid(p)).toBe(true);
      expect(p.readUInt16BE(36)).toBe(referenceTcpChecksum(p));
    }
  });

  it('never keeps the process alive: a child exits on its own, with and without close(), in every read mode', async () => {
    // Plain JS child: opens a device in the namespace, reads a flood, then returns from main.
    const child = `const a = require(process.argv[1]); const { execSync, spawn } = require('child_process');
      const [ns, mode, readMode] = [process.argv[2], process.argv[3], Number(process.argv[4])]; let n = 0;
      const d = a.open('tun7', '/var/run/netns/' + ns);
      execSync('ip -n ' + ns + ' link set tun7 up && ip -n ' + ns + ' route add 10.99.7.0/24 dev tun7');
      a.start(d.handle, (slab) => { n += new Uint32Array(slab, 0, 1)[0]; }, readMode);
      const flood = 'const s=require("dgram").createSocket("udp4");let i=0;(function f(){for(let k=0;k<64;k++)s.send(Buffer.alloc(32),9,"10.99.7.7");if(++i<100)setImmediate(f);else s.close()})()';
      spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', flood], { stdio: 'inherit' }).on('close', () => {
        console.log(n);
        if (mode === 'close') a.close(d.handle);
      });`;
    for (const [mode, readMode] of [['close', '0'], ['leave-open', '0'], ['close', '1'], ['leave-open', '1'], ['close', '2'], ['leave-open', '2']] as const) {
      const started = Date.now();
      const { stdout, code } = await exec(process.execPath, ['-e', child, ADDON, NS, mode, readMode], { timeoutMs: 20_000, allowFailure: true });
      expect(code).toBe(0);
      expect(Number(stdout.trim())).toBeGreaterThan(0);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect((await nsIp(NS, ['-json', 'link', 'show'])).stdout).not.toContain('"tun7"');
    }
  });
});

async function rxPackets(name: string): Promise<number> {
  const [link] = JSON.parse((await nsIp(NS, ['-json', '-s', 'link', 'show', name])).stdout) as { stats64: { rx: { packets: number } } }[];
  return link?.stats64.rx.packets ?? 0;
}
