// The bench's convergence timer (src/tools/scripts/join-timer*.ts) against a stand-in for etcd's
// v3 HTTP gateway and two agents' /v1/status, all on 127.0.0.1 (in the lab it runs in the etcd
// namespace against the real ones).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exec } from '../../src/kernel/exec.js';
import { runJoinTimer, timeJoins, type JoinPlan } from '../../src/tools/scripts/join-timer.js';
import { JOIN_TIMER_PROGRAM } from '../../src/tools/bench/convergence.js';

const SUBNET = '10.244.253.0/24';
const KEY = '/coreos.com/network/subnets/10.244.253.0-24';
const VALUE = '{"PublicIP":"198.18.0.200","PublicIPv6":null,"BackendType":"udp"}';

/** etcd + agents: h1 programs a new lease at once, h2 after `h2DelayMs`, h3 never (only listed when asked for). */
interface Fake {
  readonly base: string;
  readonly calls: string[];
  present: boolean;
}

let server: Server;
let fake: Fake;
const H2_DELAY_MS = 40;

beforeEach(async () => {
  const state = { base: '', calls: [] as string[], present: false };
  let putAt = 0;
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (b: Buffer) => (body += b.toString()));
    req.on('end', () => {
      const url = req.url ?? '';
      if (url.startsWith('/v3/kv/')) {
        const kv = JSON.parse(body) as { key: string; value?: string };
        const call = `${url.slice('/v3/kv/'.length)} ${Buffer.from(kv.key, 'base64').toString()}`;
        state.calls.push(kv.value === undefined ? call : `${call}=${Buffer.from(kv.value, 'base64').toString()}`);
        if (url === '/v3/kv/put') [state.present, putAt] = [true, Date.now()];
        if (url === '/v3/kv/deleterange') state.present = false;
        return void res.end('{}');
      }
      const host = /^\/(h\d)\/v1\/status$/.exec(url)?.[1];
      if (host === undefined) return void res.writeHead(404).end('not found');
      const delay = host === 'h1' ? 0 : host === 'h2' ? H2_DELAY_MS : Infinity;
      const programmed = Date.now() >= putAt + delay;
      const peers = state.present ? [{ subnet: SUBNET, state: programmed ? 'programmed' : 'pending', since: new Date(programmed ? putAt + delay : putAt).toISOString() }] : [];
      res.end(JSON.stringify({ ready: true, peers: [{ subnet: '10.244.1.0/24', state: 'programmed', since: new Date(0).toISOString() }, ...peers] }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake = state;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const plan = (joins: number, hosts = ['h1', 'h2'], timeoutMs = 5000): JoinPlan => ({
  etcd: fake.base,
  key: KEY,
  value: VALUE,
  subnet: SUBNET,
  hosts: hosts.map((id) => ({ id, url: `${fake.base}/${id}/v1/status` })),
  joins,
  pollMs: 5,
  timeoutMs,
});

describe('timeJoins', () => {
  it('puts the lease, times each host to "programmed" by its `since`, deletes it, per join', async () => {
    const samples = await timeJoins(plan(2));
    expect(samples).toHaveLength(2);
    for (const s of samples) {
      expect(Object.keys(s.hostsMs).sort()).toEqual(['h1', 'h2']);
      expect(s.hostsMs.h1).toBeGreaterThanOrEqual(0);
      expect(s.hostsMs.h2).toBeGreaterThanOrEqual(H2_DELAY_MS);
      expect(s.hostsMs.h2).toBeLessThan(H2_DELAY_MS + 1000);
    }
    expect(fake.calls).toEqual([`range ${KEY}`, `put ${KEY}=${VALUE}`, `deleterange ${KEY}`, `put ${KEY}=${VALUE}`, `deleterange ${KEY}`]);
    expect(fake.present).toBe(false);
  });

  it('names the hosts that never programmed the peer', async () => {
    await expect(timeJoins(plan(1, ['h1', 'h3'], 150))).rejects.toThrow('timed out waiting for the new peer on h3');
  });

  it('only deletes the key for a cleanup plan', async () => {
    expect(await runJoinTimer({ ...plan(5), cleanup: true })).toBeNull();
    expect(fake.calls).toEqual([`deleterange ${KEY}`]);
  });
});

describe('the compiled program (npm run build first)', () => {
  it('is where the bench looks for it and prints exactly one JSON array of samples', async () => {
    expect(existsSync(JOIN_TIMER_PROGRAM), `${JOIN_TIMER_PROGRAM} is missing: run "npm run build"`).toBe(true);
    const res = await exec(process.execPath, [JOIN_TIMER_PROGRAM, JSON.stringify(plan(1))]);
    const samples = JSON.parse(res.stdout) as { hostsMs: Record<string, number> }[];
    expect(samples.map((s) => Object.keys(s.hostsMs).sort())).toEqual([['h1', 'h2']]);
    const cleanup = await exec(process.execPath, [JOIN_TIMER_PROGRAM, JSON.stringify({ ...plan(1), cleanup: true })]);
    expect(cleanup.stdout).toBe('');
  });

  it('exits 1 with the reason on stderr when etcd refuses', async () => {
    const res = await exec(process.execPath, [JOIN_TIMER_PROGRAM, JSON.stringify({ ...plan(1), etcd: `${fake.base}/nothing-here` })], { allowFailure: true });
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^etcd \/v3\/kv\/put: HTTP /);
  });
});
