/**
 * `twill lab up --prometheus`: a real Prometheus (Debian's) in the lab scrapes every agent's
 * /metrics; its HTTP API is queried from inside the lab (the etcd namespace it runs in).
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, inNetns, isRoot, labNamespaces, run, twill } from '../support/lab.js';

const NAME = 'tprom';
const DIR = `/tmp/twill-lab/${NAME}`;
const LAB = ['--name', NAME];
const HOSTS = 3;
const PROM = 'http://198.18.0.2:9090';
const PROM_NS = `twl-${NAME}-etcd`;

interface PromVector {
  readonly status: string;
  readonly data: { readonly result: readonly { metric: Record<string, string>; value: [number, string] }[] };
}

async function query(expr: string): Promise<PromVector> {
  const script = `fetch(process.argv[1]).then((r) => r.text()).then((t) => process.stdout.write(t))`;
  const res = await inNetns(PROM_NS, process.execPath, ['-e', script, `${PROM}/api/v1/query?query=${encodeURIComponent(expr)}`]);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as PromVector;
}

const byHost = (v: PromVector): Record<string, string> => Object.fromEntries(v.data.result.map((r) => [r.metric.host ?? '?', r.value[1]]));

describe.skipIf(!isRoot())('twill lab up --prometheus', () => {
  let prometheusPid = 0;

  beforeAll(async () => {
    assertBuilt();
    await twill(['lab', 'down', ...LAB]);
    const up = await twill(['lab', 'up', ...LAB, '--hosts', String(HOSTS), '--backend', 'host-gw', '--prometheus']);
    expect(up.code, up.stderr).toBe(0);
    process.stderr.write(`lab up --prometheus (${HOSTS} hosts, first scrape of every agent included) took ${up.ms} ms\n`);
    expect(up.stdout).toContain(`prometheus ${PROM} in ${PROM_NS}`);
    prometheusPid = (JSON.parse(await readFile(`${DIR}/state.json`, 'utf8')) as { prometheus: { pid: number } }).prometheus.pid;
  });

  afterAll(async () => {
    await twill(['lab', 'down', ...LAB]);
  });

  it('writes a config promtool accepts', async () => {
    const check = await run('promtool', ['check', 'config', `${DIR}/prometheus/prometheus.yml`]);
    expect(check.code, check.stdout + check.stderr).toBe(0);
  });

  it('reports twill_peers = N-1 and twill_ready = 1 for each of the N agents', async () => {
    const peers = await query('twill_peers');
    expect(peers.status).toBe('success');
    expect(byHost(peers)).toEqual({ h1: '2', h2: '2', h3: '2' });
    expect(byHost(await query('twill_ready'))).toEqual({ h1: '1', h2: '1', h3: '1' });
    expect(byHost(await query('sum by (host) (twill_routes)'))).toEqual({ h1: '2', h2: '2', h3: '2' });
  });

  it("lab status shows each agent's readiness, its peers' states and Prometheus", async () => {
    const status = await twill(['lab', 'status', ...LAB]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^prometheus ${PROM} pid ${prometheusPid} alive`, 'm'));
    for (const [h, others] of [['h1', ['h2', 'h3']], ['h2', ['h1', 'h3']], ['h3', ['h1', 'h2']]] as const) {
      const row = status.stdout.split('\n').find((l) => l.startsWith(`${h} `) && l.includes(':8475'));
      expect(row, status.stdout).toMatch(/\sready\s/);
      for (const o of others) expect(row).toContain(`${o} programmed`);
    }
  });

  it('down stops Prometheus with the rest', async () => {
    const down = await twill(['lab', 'down', ...LAB]);
    expect(down.code, down.stderr).toBe(0);
    expect(await labNamespaces(NAME)).toEqual([]);
    // Gone, or a zombie waiting for its (re)parent to reap it: either way it no longer runs.
    const stat = await readFile(`/proc/${prometheusPid}/stat`, 'utf8').catch(() => null);
    expect(stat === null || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z'), stat ?? '').toBe(true);
  });
});
