// The scale bench's driver (src/tools/scripts/scale-driver.ts) against a stand-in for etcd's v3
// HTTP gateway and for an agent that follows etcd after a delay, on 127.0.0.1; its kernel is
// handed in as the two /proc files it reads. In the lab it runs beside the real agent.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseIp } from '../../src/lib/ipv4.js';
import { FULL_CHECK_MS, parseDriverConfig, parseRequest, ScaleDriver, type DriverConfig, type DriverReply } from '../../src/tools/scripts/scale-driver.js';
import { parseLeaseValue } from '../../src/subnet/lease-format.js';
import { fakePublicIP, fakeSubnet } from '../../src/tools/scripts/scale-peers.js';

const DELAY_MS = 30;
const BASE_PREFIXES = 7;

/** etcd's keys, and the agent's programmed peers (subnet → PublicIP, since), which follow etcd DELAY_MS after each write. */
interface Fake {
  base: string;
  readonly kv: Map<string, string>;
  readonly programmed: Map<string, { publicIP: string; since: number }>;
  readonly txns: number[];
  /** The agent programs nothing while false. */
  following: boolean;
  /** A route the kernel holds with the wrong gateway (kernel mode), until cleared. */
  wrongGateway: string | null;
  /** Prefixes in the table besides the fake routes and BASE_PREFIXES (a route or an address that came). */
  otherPrefixes: number;
  /** The agent's next batch, applied while /proc/self/net/route is read: that listing shows the routes before and after it. */
  batchWhileListed: (() => void) | null;
}

let server: Server;
let fake: Fake;

function follow(): void {
  setTimeout(() => {
    if (!fake.following) return;
    const now = Date.now();
    const want = new Map([...fake.kv].map(([k, v]) => [k.replace(/^.*\/subnets\/(\d+\.\d+\.\d+\.\d+)-(\d+)$/, '$1/$2'), parseLeaseValue(v)?.publicIP ?? '']));
    for (const s of [...fake.programmed.keys()]) if (!want.has(s)) fake.programmed.delete(s);
    for (const [s, ip] of want) if (fake.programmed.get(s)?.publicIP !== ip) fake.programmed.set(s, { publicIP: ip, since: now });
  }, DELAY_MS);
}

beforeEach(async () => {
  fake = { base: '', kv: new Map(), programmed: new Map(), txns: [], following: true, wrongGateway: null, otherPrefixes: 0, batchWhileListed: null };
  const b = (s: string): string => Buffer.from(s, 'base64').toString();
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const url = req.url ?? '';
      if (url === '/v3/kv/txn') {
        const ops = (JSON.parse(body) as { success: { requestPut?: { key: string; value: string }; requestDeleteRange?: { key: string } }[] }).success;
        fake.txns.push(ops.length);
        for (const op of ops) {
          if (op.requestPut) fake.kv.set(b(op.requestPut.key), b(op.requestPut.value));
          if (op.requestDeleteRange) fake.kv.delete(b(op.requestDeleteRange.key));
        }
      } else if (url === '/v3/kv/put') {
        const kv = JSON.parse(body) as { key: string; value: string };
        fake.kv.set(b(kv.key), b(kv.value));
      } else if (url === '/v3/kv/deleterange') {
        fake.kv.delete(b((JSON.parse(body) as { key: string }).key));
      } else if (url === '/metrics') {
        return void res.end(`# TYPE twill_peers gauge\ntwill_peers ${fake.programmed.size}\ntwill_routes{backend="udp"} ${fake.programmed.size}\n`);
      } else if (url === '/v1/status') {
        const peers = [...fake.programmed].map(([subnet, p]) => ({ subnet, publicIP: p.publicIP, state: 'programmed', since: new Date(p.since).toISOString() }));
        return void res.end(JSON.stringify({ peers }));
      } else {
        return void res.writeHead(404).end('not found');
      }
      follow();
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const hex = (ip: string): string => {
  const n = parseIp(ip)!;
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].map((x) => x.toString(16).padStart(2, '0')).join('').toUpperCase();
};

/** /proc/self/net as a kernel holding the agent's programmed peers as routes would show them. */
async function readProc(path: string): Promise<string> {
  const current = () => [...fake.programmed].map(([subnet, p]) => [subnet, subnet === fake.wrongGateway ? '198.18.0.1' : p.publicIP] as const);
  const routes = current();
  if (path.endsWith('fib_triestat')) return `Basic info: x\nMain:\n\tPrefixes:       ${BASE_PREFIXES + fake.otherPrefixes + routes.length}\nLocal:\n\tPrefixes: 1\n`;
  const batch = fake.batchWhileListed;
  fake.batchWhileListed = null;
  if (batch) {
    // The kernel's listing comes in chunks: the routes read before the batch, and those after it.
    batch();
    routes.push(...current().filter(([subnet]) => !routes.some(([s]) => s === subnet)));
  }
  const lines = routes.map(([subnet, gw]) => `eth0\t${hex(subnet.split('/')[0]!)}\t${hex(gw)}\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0`);
  return ['Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT', 'eth0\t00000000\t010012C6\t0003\t0\t0\t0\t00000000\t0\t0\t0', ...lines, ''].join('\n');
}

function driver(programmedBy: DriverConfig['programmedBy']): ScaleDriver {
  const cfg: DriverConfig = { etcd: fake.base, api: fake.base, template: { publicIPv6: null }, programmedBy, pollMs: 5, txnOps: 128, parallel: 4 };
  return new ScaleDriver(cfg, readProc);
}

type Ok<O> = Extract<DriverReply, { ok: true; op: O }>;

describe.each(['agent-api', 'kernel-routes'] as const)('scale driver (%s)', (mode) => {
  it('writes peers in transactions of 128 and times a burst of adds and one of deletes', async () => {
    const d = driver(mode);
    await d.handle({ op: 'mark', routes: 0 });
    const add = (await d.handle({ op: 'burst', kind: 'add', from: 0, count: 300, timeoutMs: 5000 })) as Ok<'burst'>;
    expect(add.ok).toBe(true);
    expect(fake.txns.sort((a, b) => b - a)).toEqual([128, 128, 44]);
    expect(fake.kv.get('/coreos.com/network/subnets/10.2.43.0-24')).toBe(`{"PublicIP":"${fakePublicIP(299)}","PublicIPv6":null}`);
    expect(add.writtenAt).toBeGreaterThanOrEqual(add.startAt);
    expect(add.doneAt - add.startAt).toBeGreaterThanOrEqual(DELAY_MS - 2); // the fake agent's delay (its own stamp, or a poll)
    if (mode === 'agent-api') expect(add.resolutionMs).toBe(0); // the agent's own `since`
    else expect(add.resolutionMs).toBeGreaterThan(0);
    expect(fake.programmed.size).toBe(300);

    const del = (await d.handle({ op: 'burst', kind: 'delete', from: 0, count: 300, timeoutMs: 5000 })) as Ok<'burst'>;
    expect(del.ok).toBe(true);
    expect(fake.kv.size).toBe(0);
    expect(fake.programmed.size).toBe(0);
    expect(del.resolutionMs).toBeGreaterThan(0); // deletes leave no stamp: as seen by a poll
  });

  it('waits for a cold start from when the agent started, and churns to an exact end state', async () => {
    const d = driver(mode);
    fake.following = false; // the agent is down while its peers are written
    await d.handle({ op: 'put', from: 0, count: 100 });
    await d.handle({ op: 'mark', routes: 0 });
    const since = Date.now();
    fake.following = true;
    follow();
    const wait = (await d.handle({ op: 'wait', since, timeoutMs: 5000 })) as Ok<'wait'>;
    expect(wait.doneAt).toBeGreaterThanOrEqual(since);

    const churn = (await d.handle({ op: 'churn', rate: 100, seconds: 0.3, seed: 1, firstNew: 100, timeoutMs: 5000 })) as Ok<'churn'>;
    expect(churn.ok).toBe(true);
    expect(churn.changes).toBe(30);
    expect(churn.lastWriteAt - churn.startAt).toBeGreaterThanOrEqual(250); // paced: 29 gaps of 10 ms
    expect(churn.doneAt).toBeGreaterThanOrEqual(churn.lastWriteAt);
    expect(churn.peers).toBe(fake.kv.size);
    expect(fake.programmed.size).toBe(fake.kv.size);
    expect([...fake.programmed.keys()].some((s) => s === fakeSubnet(100))).toBe(true); // the first new peer joined
  });

  it('gives up after its timeout, saying how far the agent got', async () => {
    const d = driver(mode);
    await d.handle({ op: 'mark', routes: 0 });
    fake.following = false;
    await expect(d.handle({ op: 'burst', kind: 'add', from: 0, count: 10, timeoutMs: 150 })).rejects.toThrow(/timed out after 0.15 s waiting for 10 peers programmed \(saw 0 /);
  });
});

describe('scale driver', () => {
  it('waits, in kernel mode, until every route has the right gateway, not only the right count', async () => {
    const d = driver('kernel-routes');
    await d.handle({ op: 'mark', routes: 0 });
    fake.wrongGateway = fakeSubnet(3);
    setTimeout(() => (fake.wrongGateway = null), 150);
    const t0 = Date.now();
    const add = (await d.handle({ op: 'burst', kind: 'add', from: 0, count: 10, timeoutMs: 5000 })) as Ok<'burst'>;
    expect(add.doneAt - t0).toBeGreaterThanOrEqual(140);
  });

  it('does not count again from a route listing torn by a batch the agent applied while it was read', async () => {
    // The lab's churn: the agent swaps stale routes for new ones in one batch (the count stays
    // right), and the listing, read meanwhile, shows both. Counting from that listing skewed the
    // count for good: "timed out ... (saw 1002 routes)" with the kernel exactly right.
    const d = driver('kernel-routes');
    fake.following = false;
    await d.handle({ op: 'put', from: 0, count: 10 });
    await d.handle({ op: 'mark', routes: 0 });
    const want = new Map(Array.from({ length: 10 }, (_, i) => [fakeSubnet(i), { publicIP: fakePublicIP(i), since: Date.now() }] as const));
    for (const [subnet, p] of [...want].slice(0, 8)) fake.programmed.set(subnet, p);
    for (const i of [50, 51]) fake.programmed.set(fakeSubnet(i), { publicIP: fakePublicIP(i), since: Date.now() });
    fake.batchWhileListed = () => {
      fake.programmed.clear();
      for (const [subnet, p] of want) fake.programmed.set(subnet, p);
    };
    const since = Date.now();
    const wait = (await d.handle({ op: 'wait', since, timeoutMs: FULL_CHECK_MS / 2 })) as Ok<'wait'>;
    expect(wait.ok).toBe(true);
    expect(fake.batchWhileListed).toBeNull(); // the torn listing was read
    expect(wait.polls).toBeGreaterThanOrEqual(2);
  });

  it('still sees the end when a route beside the fake ones came (the count is off), and counts from there on', async () => {
    const d = driver('kernel-routes');
    fake.following = false;
    await d.handle({ op: 'put', from: 0, count: 10 });
    await d.handle({ op: 'mark', routes: 0 });
    fake.otherPrefixes = 1; // e.g. an address the agent's start added
    const since = Date.now();
    fake.following = true;
    follow();
    const wait = (await d.handle({ op: 'wait', since, timeoutMs: 3 * FULL_CHECK_MS })) as Ok<'wait'>;
    expect(wait.ok).toBe(true);
    expect(wait.doneAt - since).toBeGreaterThanOrEqual(FULL_CHECK_MS - 5); // the count never said done: the routes were compared
    expect(wait.resolutionMs).toBe(wait.doneAt - since); // and no poll before that could tell it was not done

    const add = (await d.handle({ op: 'burst', kind: 'add', from: 10, count: 10, timeoutMs: 3 * FULL_CHECK_MS })) as Ok<'burst'>;
    expect(add.ok).toBe(true);
    expect(add.doneAt - add.startAt).toBeLessThan(FULL_CHECK_MS / 2); // counted right again
    expect(add.resolutionMs).toBeLessThan(FULL_CHECK_MS / 2);
  });

  it('probes an API path: sizes and one latency per GET', async () => {
    const d = driver('agent-api');
    const r = (await d.handle({ op: 'probe', path: '/metrics', times: 3 })) as Ok<'probe'>;
    expect(r.latenciesMs).toHaveLength(3);
    expect(r.bytes).toBeGreaterThan(20);
    await expect(d.handle({ op: 'probe', path: '/nope', times: 1 })).rejects.toThrow(/HTTP 404/);
  });

  it('clears what it wrote', async () => {
    const d = driver('agent-api');
    await d.handle({ op: 'put', from: 5, count: 3 });
    expect(fake.kv.size).toBe(3);
    await d.handle({ op: 'clear' });
    expect(fake.kv.size).toBe(0);
    await sleep(DELAY_MS + 10);
  });

  it('parses its requests and its configuration', () => {
    expect(parseRequest('{"op":"clear"}')).toEqual({ op: 'clear' });
    expect(parseRequest('{"x":1}')).toBe('a request needs an "op"');
    expect(parseRequest('nope')).toMatch(/^not JSON/);
    const cfg = { etcd: 'http://e', api: 'http://a', template: { publicIPv6: null }, programmedBy: 'agent-api', pollMs: 20, txnOps: 128, parallel: 4 };
    expect(parseDriverConfig([JSON.stringify(cfg)])).toEqual(cfg);
    expect(parseDriverConfig([JSON.stringify({ ...cfg, programmedBy: 'magic' })])).toBeNull();
    expect(parseDriverConfig([])).toBeNull();
    expect(parseDriverConfig(['{'])).toBeNull();
  });
});
