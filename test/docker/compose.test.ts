import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The image and the compose lab on a real Docker engine (scripts/test.sh starts dockerd and
// makes the base images offline first). Flat host-gw, routed udp and routed vxlan: every pod
// reaches every other, by the documented check; routed host-gw: the check fails and says which pairs.
// compose.yaml is at the repository root (`docker compose up -d` from a fresh clone); check.sh in deploy/compose.
const COMPOSE_DIR = fileURLToPath(new URL('../../', import.meta.url));
const PROJECT = 'twltest';

interface Run {
  code: number;
  out: string;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(cmd, args, { cwd: COMPOSE_DIR, env: { ...process.env, COMPOSE_PROJECT_NAME: PROJECT, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code: code ?? 128, out })));
}

let composeCmd: string[] = [];
const compose = (args: string[], env: Record<string, string> = {}) => run(composeCmd[0]!, [...composeCmd.slice(1), ...args], env);
const down = () => compose(['down', '-v', '--remove-orphans', '-t', '3'], { COMPOSE_PROFILES: 'flat,routed' });

async function up(profile: string, backend: string): Promise<void> {
  await down();
  const res = await compose(['up', '-d'], { COMPOSE_PROFILES: profile, TWILL_BACKEND: backend });
  expect(res.code, res.out).toBe(0);
}

const check = () => run('bash', ['deploy/compose/check.sh']);

beforeAll(async () => {
  composeCmd = (await run('docker', ['compose', 'version'])).code === 0 ? ['docker', 'compose'] : ['docker-compose'];
  const build = await compose(['build'], { COMPOSE_PROFILES: 'flat,routed' });
  expect(build.code, build.out.slice(-3000)).toBe(0);
});

afterAll(async () => {
  await run('docker', ['rm', '-f', `${PROJECT}-plain-agent`]);
  await down();
});

describe('compose lab', () => {
  it('the image: entrypoint `twill agent`, the etcd TLS flags there', async () => {
    const res = await run('docker', ['run', '--rm', 'twill:0.1.0', '--help']);
    expect(res.code).toBe(0);
    expect(res.out).toMatch(/Usage: twill agent/);
    expect(res.out).toContain('--etcd-cafile');
  });

  it('flat, host-gw: three nodes, a pod each, every pod reaches every other (check.sh exits 0)', async () => {
    await up('flat', 'host-gw');
    const res = await check();
    expect(res.out).toMatch(/check: 6\/6 pod pairs reach each other/);
    expect(res.code, res.out).toBe(0);
  });

  it('the plain image runs the agent with NET_ADMIN and NET_RAW only, not privileged, and gets ready', async () => {
    const name = `${PROJECT}-plain-agent`;
    const start = await run('docker', ['run', '-d', '--name', name, '--network', `${PROJECT}_seg_a`, '--ip', '198.18.200.30',
      '--cap-drop', 'ALL', '--cap-add', 'NET_ADMIN', '--cap-add', 'NET_RAW', '--sysctl', 'net.ipv4.ip_forward=1',
      'twill:0.1.0', '--etcd-endpoints', 'http://198.18.200.2:2379', '--iface', 'eth0']);
    expect(start.code, start.out).toBe(0);
    const probe = ['exec', name, 'node', '-e', "fetch('http://127.0.0.1:8475/readyz').then((r) => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"];
    let ready = false;
    for (let i = 0; i < 60 && !ready; i++) {
      ready = (await run('docker', probe)).code === 0;
      if (!ready) await new Promise((r) => setTimeout(r, 500));
    }
    const logs = await run('docker', ['logs', name]);
    expect(ready, logs.out).toBe(true);
    const inspect = await run('docker', ['inspect', '-f', '{{.HostConfig.Privileged}} {{.HostConfig.CapAdd}}', name]);
    expect(inspect.out.trim()).toMatch(/^false \[(CAP_)?NET_ADMIN (CAP_)?NET_RAW\]$/);
    // It sees the three lab nodes as peers and routes their subnets.
    const routes = await run('docker', ['exec', name, 'ip', 'route', 'show', 'proto', '116']);
    expect(routes.out.trim().split('\n')).toHaveLength(3);
  });

  it('routed, udp: nodes on two networks joined by a router, every pod reaches every other', async () => {
    await up('routed', 'udp');
    const res = await check();
    expect(res.out).toMatch(/check: 6\/6 pod pairs reach each other/);
    expect(res.code, res.out).toBe(0);
  });

  it('routed, vxlan: the kernel tunnel crosses the router, every pod reaches every other', async () => {
    await up('routed', 'vxlan');
    const res = await check();
    expect(res.out).toMatch(/check: 6\/6 pod pairs reach each other/);
    expect(res.code, res.out).toBe(0);
    const dev = await compose(['exec', '-T', 'rnode1', 'ip', '-d', 'link', 'show', 'flannel.1'], { COMPOSE_PROFILES: 'routed' });
    expect(dev.out).toMatch(/vxlan id 1 .*dstport 8472/);
  });

  it('routed, host-gw: pods on different networks do not reach each other, and check.sh exits 1 naming them', async () => {
    await up('routed', 'host-gw');
    const res = await check();
    expect(res.code).toBe(1);
    // rnode2 is alone on segment B: its 4 pairs fail, rnode1 <-> rnode3 (both on A) pass.
    expect(res.out).toMatch(/ok {4}rnode1 pod -> rnode3 pod/);
    expect(res.out).toMatch(/FAIL {2}rnode1 pod -> rnode2 pod/);
    expect(res.out).toMatch(/check: 2\/6 pod pairs reach each other/);
  });
});
