import { Etcd3 } from 'etcd3';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { twill } from '../support/cli.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';

let etcd: EtcdServer;
let raw: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd();
  raw = new Etcd3({ hosts: etcd.endpoint });
});
afterAll(async () => {
  raw?.close();
  await etcd?.stop();
});

describe('twill config set/get', () => {
  it('writes a valid config from stdin and prints it back with defaults; get prints what is stored', async () => {
    const flags = ['--etcd-endpoints', etcd.endpoint, '--etcd-prefix', '/a/network'];
    const set = await twill(['config', 'set', ...flags], { input: '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}' });
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ SubnetLen: 24, SubnetMin: '10.244.1.0', SubnetMax: '10.244.255.0' });
    expect(await raw.get('/a/network/config').string()).toBe('{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}');
    const get = await twill(['config', 'get', ...flags]);
    expect(get).toMatchObject({ code: 0, stdout: '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}\n' });
  });

  it('reads --file, and takes the endpoints from TWILL_ETCD_ENDPOINTS too', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'twill-cfg-'));
    await writeFile(join(dir, 'net.json'), '{"Network":"10.50.0.0/16","Backend":{"Type":"host-gw"}}');
    process.env.TWILL_ETCD_ENDPOINTS = etcd.endpoint;
    try {
      const set = await twill(['config', 'set', '--file', join(dir, 'net.json'), '--etcd-prefix', '/b/network']);
      expect(set.code).toBe(0);
    } finally {
      delete process.env.TWILL_ETCD_ENDPOINTS;
      await rm(dir, { recursive: true, force: true });
    }
    expect(await raw.get('/b/network/config').string()).toBe('{"Network":"10.50.0.0/16","Backend":{"Type":"host-gw"}}');
  });

  it.each([
    ['{"Network":"10.244.0.0/16","SubnetLen":31}', /SubnetLen 31 is too long/],
    ['{"Network":"300.1.0.0/16"}', /Network "300.1.0.0\/16" is not an IPv4 CIDR/],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"nope"}}', /Backend.Type unknown backend type "nope"/],
    ['not json', /not valid JSON/],
    ['', /empty input/],
  ])('rejects %s, names the problem, exits non-zero and writes nothing', async (input, message) => {
    await raw.put('/c/network/config').value('{"Network":"10.1.0.0/16"}');
    const res = await twill(['config', 'set', '--etcd-endpoints', etcd.endpoint, '--etcd-prefix', '/c/network'], { input });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(message);
    expect(res.stderr).toMatch(/TWILL_ERR_CONFIG_INVALID/);
    expect(await raw.get('/c/network/config').string()).toBe('{"Network":"10.1.0.0/16"}');
  });

  it('says clearly when there is no config, or no etcd', async () => {
    const none = await twill(['config', 'get', '--etcd-endpoints', etcd.endpoint, '--etcd-prefix', '/none']);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/no network config at \/none\/config .*TWILL_ERR_CONFIG_MISSING/);
    const down = await twill(['config', 'get', '--etcd-endpoints', 'http://127.0.0.1:9']);
    expect(down.stderr).toMatch(/TWILL_ERR_ETCD_UNAVAILABLE/);
  });
});
