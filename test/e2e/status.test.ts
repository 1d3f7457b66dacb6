import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../src/status/types.js';
import { exec } from '../../src/kernel/exec.js';
import { CLI, twill } from '../support/cli.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { nsGet } from '../support/http.js';
import { eventually } from '../support/logger.js';
import { createNetns, deleteNetnsByPrefix, nsExec, nsIp, nsRoutes, veth } from '../support/netns.js';

// Two nodes on one veth, etcd on node A's underlay address. Each agent serves its status API
// on its own underlay address; every request is made from inside node A's namespace.
const PREFIX = 'twl-t-st-';
const A = `${PREFIX}a`;
const B = `${PREFIX}b`;
const IP_A = '198.18.4.1';
const IP_B = '198.18.4.2';
const API_A = `http://${IP_A}:8475`;
const ETCD = `http://${IP_A}:2379`;
const root = process.getuid?.() === 0;

let etcd: EtcdServer | null = null;
const agents = new Map<string, ChildProcess>();
const logs = new Map<string, string>();
let dir = '';

const etcdctl = (...args: string[]) => nsExec(A, 'etcdctl', ['--endpoints', ETCD, ...args]);
const get = (path: string) => nsGet(A, `${API_A}${path}`);
const status = async (): Promise<AgentStatus> => JSON.parse((await get('/v1/status')).body) as AgentStatus;
const metrics = async (): Promise<string> => (await get('/metrics')).body;
const sample = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? NaN : Number(line.slice(series.length + 1));
};
// 50 scrapes in a row over one keep-alive connection: the time one scrape costs the agent.
const SCRAPE_TIMING = `(async () => { const t = []; for (let i = 0; i < 50; i++) { const t0 = performance.now(); await (await fetch(process.argv[1])).text(); t.push(performance.now() - t0); } t.sort((a, b) => a - b); console.log('scrape median ' + t[25].toFixed(2) + ' ms, max ' + t[49].toFixed(2) + ' ms'); })()`;
const ROUTE_ADDS = 'twill_route_changes_total{op="add",result="ok"}';

function startAgent(name: string, ns: string, ip: string): ChildProcess {
  const args = ['netns', 'exec', ns, process.execPath, CLI, 'agent', '--etcd-endpoints', ETCD, '--iface', 'eth0', '--subnet-file', join(dir, `${name}.env`), '--status-addr', `${ip}:8475`, '--node-name', name];
  const child = spawn('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  logs.set(name, '');
  const append = (b: Buffer) => logs.set(name, (logs.get(name) ?? '') + b.toString());
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  agents.set(name, child);
  return child;
}

async function stopAgent(name: string): Promise<number | null> {
  const child = agents.get(name);
  if (!child || child.exitCode !== null) return child?.exitCode ?? null;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  agents.delete(name);
  return exited;
}

beforeAll(async () => {
  if (!root) return;
  dir = await mkdtemp(join(tmpdir(), 'twill-status-e2e-'));
  await createNetns(PREFIX, [A, B]);
  await veth({ ns: A, name: 'eth0' }, { ns: B, name: 'eth0' });
  await nsIp(A, ['addr', 'add', `${IP_A}/24`, 'dev', 'eth0']);
  await nsIp(B, ['addr', 'add', `${IP_B}/24`, 'dev', 'eth0']);
  etcd = await startEtcd({ netns: A, host: IP_A, dataDir: join(dir, 'etcd') });
});

afterAll(async () => {
  for (const child of agents.values()) child.kill('SIGKILL');
  await etcd?.stop();
  await deleteNetnsByPrefix(PREFIX);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!root)('status API of a live agent', () => {
  it('is live but not ready while there is no config, and says what it waits for', async () => {
    startAgent('a', A, IP_A);
    await eventually(async () => (await get('/healthz')).status === 200, 15_000, '/healthz');
    const ready = await get('/readyz');
    expect(ready.status).toBe(503);
    expect(JSON.parse(ready.body)).toMatchObject({ ready: false, waitingFor: expect.arrayContaining(['lease']) as unknown });
    const s = await status();
    expect(s).toMatchObject({ state: 'starting', ready: false, lease: null, network: null, node: { name: 'a', publicIP: IP_A, iface: 'eth0' } });
    expect(sample(await metrics(), 'twill_ready')).toBe(0);
    expect((await get('/nope')).status).toBe(404);
  });

  it('turns ready once it holds a lease, programmed the backend and wrote subnet.env', async () => {
    await etcdctl('put', '/coreos.com/network/config', '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}');
    await eventually(async () => (await get('/readyz')).status === 200, 20_000, '/readyz 200');
    const s = await status();
    expect(s).toMatchObject({ state: 'running', ready: true, waitingFor: [], backend: { type: 'host-gw', mtu: 1500, device: null } });
    expect(s.network).toMatchObject({ network: '10.244.0.0/16', subnetLen: 24, backendType: 'host-gw' });
    expect(s.lease?.subnet).toMatch(/^10\.244\.\d+\.0\/24$/);
    expect(s.lease?.etcdLeaseId).toMatch(/^[1-9]\d*$/);
    expect(Date.parse(s.lease?.expiresAt ?? '') - Date.now()).toBeGreaterThan(23 * 3600_000);
    expect(s.etcd).toMatchObject({ endpoints: [ETCD], connected: true });
    expect(s.etcd.watchRevision).toMatch(/^\d+$/);
    expect(s.peers).toEqual([]);
    const text = await metrics();
    expect(sample(text, 'twill_ready')).toBe(1);
    expect(sample(text, 'twill_etcd_up')).toBe(1);
    expect(sample(text, 'twill_lease_events_total{event="acquired"}')).toBe(1);
  });

  it('shows a second agent as a programmed peer, and counts the route put back after a delete by hand', async () => {
    startAgent('b', B, IP_B);
    const peer = (await eventually(async () => (await status()).peers.find((p) => p.publicIP === IP_B && p.state === 'programmed'), 20_000, 'peer b programmed'))!;
    expect(peer).toMatchObject({ backendType: 'host-gw', since: expect.stringMatching(/^\d{4}-/) as unknown });
    expect(sample(await metrics(), 'twill_peers')).toBe(1);
    expect(sample(await metrics(), 'twill_routes{backend="host-gw"}')).toBe(1);
    expect(sample(await metrics(), 'twill_etcd_watch_events_total{type="put"}')).toBeGreaterThanOrEqual(1);

    const before = sample(await metrics(), ROUTE_ADDS);
    await nsIp(A, ['route', 'del', peer.subnet]);
    await eventually(async () => (await nsRoutes(A)).some((r) => r.dst === peer.subnet), 10_000, 'route back');
    const after = await eventually(async () => {
      const n = sample(await metrics(), ROUTE_ADDS);
      return n > before ? n : 0;
    }, 5_000, 'route change counted');
    expect(after).toBe(before + 1);
    expect(sample(await metrics(), 'twill_reconcile_duration_seconds_count')).toBeGreaterThan(0);
  });

  it("passes promtool check metrics on a live agent's /metrics", async () => {
    const res = await get('/metrics');
    expect(res.status).toBe(200);
    const timing = await exec(process.execPath, ['-e', SCRAPE_TIMING, `${API_A}/metrics`], { netns: A });
    process.stderr.write(`/metrics: ${res.body.length} bytes, ${res.body.split('\n').length} lines; ${timing.stdout.trim()}\n`);
    const check = await exec('promtool', ['check', 'metrics'], { input: res.body, allowFailure: true });
    expect({ code: check.code, out: check.stdout + check.stderr }).toEqual({ code: 0, out: '' });
  });

  it('prints the status with `twill status`, and --json', async () => {
    const text = await twill(['status', '--addr', `${IP_A}:8475`], { netns: A });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^state\s+running, ready$/m);
    expect(text.stdout).toMatch(new RegExp(`^10\\.244\\.\\d+\\.0/24\\s+${IP_B.replaceAll('.', '\\.')}\\s+host-gw\\s+programmed`, 'm'));
    const json = await twill(['status', '--addr', `${IP_A}:8475`, '--json'], { netns: A });
    expect(JSON.parse(json.stdout)).toMatchObject({ node: { name: 'a' }, ready: true });
    const none = await twill(['status', '--addr', `${IP_A}:1`], { netns: A });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(`http://${IP_A}:1/v1/status`);
    expect(none.stderr).toContain('TWILL_ERR_STATUS_UNREACHABLE');
  });

  it('refuses a status address in use with a coded error', async () => {
    const second = startAgent('a2', A, IP_A);
    const code = await new Promise<number | null>((r) => second.once('exit', (c) => r(c)));
    agents.delete('a2');
    expect(code).toBe(2);
    expect(logs.get('a2')).toContain('TWILL_ERR_API_ADDR_IN_USE');
    expect(logs.get('a2')).toContain(`${IP_A}:8475`);
  });

  it('drops the peer once its agent stopped and its lease is gone', async () => {
    expect(await stopAgent('b')).toBe(0);
    // A clean stop keeps the lease (24 h): delete the key as its expiry would.
    const keys = (await etcdctl('get', '--prefix', '/coreos.com/network/subnets/', '--keys-only')).stdout.split('\n').filter(Boolean);
    const own = (await status()).lease!.subnet.replace('/', '-');
    for (const key of keys.filter((k) => !k.endsWith(own))) await etcdctl('del', key);
    await eventually(async () => (await status()).peers.length === 0, 10_000, 'peer gone');
    expect(sample(await metrics(), 'twill_peers')).toBe(0);
    expect(sample(await metrics(), 'twill_etcd_watch_events_total{type="delete"}')).toBeGreaterThanOrEqual(1);
  });

  it('counts a lost lease, and is ready again once it is re-acquired', async () => {
    const own = (await status()).lease!.subnet.replace('/', '-');
    await etcdctl('del', `/coreos.com/network/subnets/${own}`);
    await eventually(async () => sample(await metrics(), 'twill_lease_events_total{event="lost"}') === 1, 10_000, 'lease lost counted');
    await eventually(async () => (await get('/readyz')).status === 200 && sample(await metrics(), 'twill_lease_events_total{event="acquired"}') === 2, 15_000, 'ready again');
    expect(await stopAgent('a')).toBe(0);
  });
});
