import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { exec } from '../../src/kernel/exec.js';
import { etcdClientSecurity, parseEtcdAccess } from '../../src/subnet/etcd-access.js';
import { parseNetworkConfig } from '../../src/subnet/config.js';
import { EtcdRegistry } from '../../src/subnet/etcd-registry.js';
import { LeaseManager } from '../../src/subnet/lease-manager.js';
import { LeaseStream } from '../../src/subnet/lease-watch.js';
import { parseCidr } from '../../src/lib/ipv4.js';
import { makePki, type TestPki } from '../support/certs.js';
import { twill } from '../support/cli.js';
import { startEtcd, type EtcdServer } from '../support/etcd.js';
import { memoryLogger } from '../support/logger.js';

// Real etcds secured three ways, with certificates this test makes with openssl: TLS with
// client-certificate auth, TLS with a CA only, and user/password auth. `twill config` and the
// registry reach each only with the right flags; the password never shows in any output.
const NET = '{"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}}';
const PASSWORD = 'pw-Zq81-never-logged';

let dir = '';
let pki: TestPki;
let mtls: EtcdServer;
let caOnly: EtcdServer;
let authed: EtcdServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'twill-etcd-tls-'));
  pki = await makePki(join(dir, 'pki'));
  [mtls, caOnly, authed] = await Promise.all([
    startEtcd({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.ca, clientCertAuth: true, clientCert: pki.clientCert, clientKey: pki.clientKey } }),
    startEtcd({ tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.ca, clientCertAuth: false } }),
    startEtcd(),
  ]);
  const ctl = (...args: string[]) => exec('etcdctl', ['--endpoints', authed.endpoint, ...args]);
  await ctl('user', 'add', `root:${PASSWORD}`);
  await ctl('auth', 'enable');
}, 60_000);

afterAll(async () => {
  await Promise.all([mtls?.stop(), caOnly?.stop(), authed?.stop()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Logs the access object the way a careless caller might, and checks no password came out. */
function logLeak(log: ReturnType<typeof memoryLogger>, access: ReturnType<typeof parseEtcdAccess>): void {
  log.logger.info({ options: { etcd: { access } } }, 'options');
  expect(JSON.stringify(log.lines())).not.toContain(PASSWORD);
}

const tlsFlags = (ca: string) => ['--etcd-cafile', ca, '--etcd-certfile', pki.clientCert, '--etcd-keyfile', pki.clientKey];

describe('etcd with TLS and client-certificate auth', () => {
  it('config set/get works with --etcd-cafile, --etcd-certfile and --etcd-keyfile', async () => {
    const flags = ['--etcd-endpoints', mtls.endpoint, ...tlsFlags(pki.ca)];
    expect(mtls.endpoint).toMatch(/^https:/);
    const set = await twill(['config', 'set', ...flags], { input: NET });
    expect(set.stderr).not.toMatch(/TWILL_ERR/);
    expect(set.code).toBe(0);
    expect(await twill(['config', 'get', ...flags])).toMatchObject({ code: 0, stdout: `${NET}\n` });
  });

  it('takes the files from TWILL_ETCD_CAFILE, TWILL_ETCD_CERTFILE and TWILL_ETCD_KEYFILE too', async () => {
    const env = { TWILL_ETCD_CAFILE: pki.ca, TWILL_ETCD_CERTFILE: pki.clientCert, TWILL_ETCD_KEYFILE: pki.clientKey };
    Object.assign(process.env, env);
    try {
      expect(await twill(['config', 'get', '--etcd-endpoints', mtls.endpoint])).toMatchObject({ code: 0, stdout: `${NET}\n` });
    } finally {
      for (const k of Object.keys(env)) delete process.env[k];
    }
  });

  it('is refused without a client certificate, or when the server is checked against another CA', async () => {
    const noCert = await twill(['config', 'get', '--etcd-endpoints', mtls.endpoint, '--etcd-cafile', pki.ca]);
    expect(noCert.code).toBe(2);
    expect(noCert.stderr).toMatch(/TWILL_ERR_ETCD_UNAVAILABLE/);
    const wrongCa = await twill(['config', 'get', '--etcd-endpoints', mtls.endpoint, ...tlsFlags(pki.otherCa)]);
    expect(wrongCa.code).toBe(2);
    expect(wrongCa.stderr).toMatch(/TWILL_ERR_ETCD_UNAVAILABLE/);
  });

  it('the registry creates and lists a lease over mTLS', async () => {
    const access = parseEtcdAccess({ etcdCafile: pki.ca, etcdCertfile: pki.clientCert, etcdKeyfile: pki.clientKey }, [mtls.endpoint]);
    const registry = new EtcdRegistry({ endpoints: [mtls.endpoint], prefix: '/tls/network', ...etcdClientSecurity(access) });
    try {
      const lease = await registry.createLease(parseCidr('10.244.7.0/24', true)!, { publicIP: '198.18.0.7', publicIPv6: null, backendType: 'host-gw' }, 60);
      expect(lease).not.toBeNull();
      expect((await registry.listLeases()).leases.map((l) => l.attrs.publicIP)).toEqual(['198.18.0.7']);
    } finally {
      registry.close();
    }
  });

  it.each([
    [['--etcd-cafile', 'CA'], 'http', 'TWILL_ERR_OPTION_INVALID', /need https:\/\/ endpoints/],
    [['--etcd-certfile', 'CERT'], 'https', 'TWILL_ERR_OPTION_INVALID', /--etcd-certfile and --etcd-keyfile go together/],
    [['--etcd-cafile', '/nonexistent/ca.pem'], 'https', 'TWILL_ERR_ETCD_TLS_FILE', /--etcd-cafile: cannot read \/nonexistent\/ca.pem \(ENOENT\)/],
    [['--etcd-cafile', 'KEY-AS-WELL', '--etcd-certfile', 'CERT', '--etcd-keyfile', '/etc/hostname'], 'https', 'TWILL_ERR_ETCD_TLS_FILE', /--etcd-keyfile: .* is not a PEM file/],
  ])('rejects %j over %s with %s, naming the flag', async (flags, scheme, code, message) => {
    const real = flags.map((f) => ({ CA: pki.ca, CERT: pki.clientCert, 'KEY-AS-WELL': pki.ca })[f] ?? f);
    const res = await twill(['config', 'get', '--etcd-endpoints', `${scheme}://127.0.0.1:${mtls.port}`, ...real]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
    expect(res.stderr).toContain(code);
  });
});

describe('etcd with TLS and a CA only (no client-certificate auth)', () => {
  it('config set/get works with --etcd-cafile alone', async () => {
    const flags = ['--etcd-endpoints', caOnly.endpoint, '--etcd-cafile', pki.ca];
    expect((await twill(['config', 'set', ...flags], { input: NET })).code).toBe(0);
    expect(await twill(['config', 'get', ...flags])).toMatchObject({ code: 0, stdout: `${NET}\n` });
  });

  it('is refused when the server certificate does not chain to --etcd-cafile', async () => {
    const res = await twill(['config', 'get', '--etcd-endpoints', caOnly.endpoint, '--etcd-cafile', pki.otherCa]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/TWILL_ERR_ETCD_UNAVAILABLE/);
  });
});

describe('etcd with user/password auth', () => {
  it('config set/get works with --etcd-username/--etcd-password and with TWILL_ETCD_PASSWORD; the password is never printed', async () => {
    const set = await twill(['config', 'set', '--etcd-endpoints', authed.endpoint, '--etcd-username', 'root', '--etcd-password', PASSWORD], { input: NET });
    expect(set.code).toBe(0);
    process.env.TWILL_ETCD_PASSWORD = PASSWORD;
    try {
      const get = await twill(['config', 'get', '--etcd-endpoints', authed.endpoint, '--etcd-username', 'root']);
      expect(get).toMatchObject({ code: 0, stdout: `${NET}\n` });
    } finally {
      delete process.env.TWILL_ETCD_PASSWORD;
    }
    expect(set.stdout + set.stderr).not.toContain(PASSWORD);
  });

  it('a wrong password is TWILL_ERR_ETCD_AUTH, no credentials is a refused request; neither prints the password', async () => {
    const wrong = await twill(['config', 'get', '--etcd-endpoints', authed.endpoint, '--etcd-username', 'root', '--etcd-password', `${PASSWORD}x`]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/etcd refused the user name or password .*TWILL_ERR_ETCD_AUTH/);
    expect(wrong.stdout + wrong.stderr).not.toContain(PASSWORD);
    const none = await twill(['config', 'get', '--etcd-endpoints', authed.endpoint]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/TWILL_ERR_ETCD_REQUEST/);
  });

  it('a wrong password stops the lease stream and the lease manager at the first attempt, logged once without the password', async () => {
    const access = parseEtcdAccess({ etcdUsername: 'root', etcdPassword: `${PASSWORD}x` }, [authed.endpoint]);
    const registry = new EtcdRegistry({ endpoints: [authed.endpoint], prefix: '/auth/network', callTimeoutMs: 2000, ...etcdClientSecurity(access) });
    const log = memoryLogger();
    const lists = vi.spyOn(registry, 'listLeases');
    try {
      const stream = new LeaseStream({ registry, logger: log.logger, onEvents: () => undefined, retry: { initialMs: 10, maxMs: 50 } });
      await expect(stream.start()).rejects.toMatchObject({ code: 'TWILL_ERR_ETCD_AUTH' });
      const manager = new LeaseManager({
        registry,
        logger: log.logger,
        config: parseNetworkConfig(NET),
        attrs: { publicIP: '198.18.0.9', publicIPv6: null },
        ttlSeconds: 60,
        preferred: null,
        onLease: () => undefined,
        retry: { initialMs: 10, maxMs: 50 },
      });
      await expect(manager.acquire()).rejects.toMatchObject({ code: 'TWILL_ERR_ETCD_AUTH' });
      await new Promise((r) => setTimeout(r, 300)); // many retry periods
      expect(lists).toHaveBeenCalledTimes(2); // one attempt each
      const refusals = log.lines().filter((l) => l.level === 50);
      expect(refusals.map((l) => l.code)).toEqual(['TWILL_ERR_ETCD_AUTH', 'TWILL_ERR_ETCD_AUTH']);
      logLeak(log, access);
      await stream.stop();
      manager.stop();
    } finally {
      registry.close();
    }
  });

  it('--etcd-username without a password, or a password without a user, is a bad option', async () => {
    const a = await twill(['config', 'get', '--etcd-endpoints', authed.endpoint, '--etcd-username', 'root']);
    expect(a.stderr).toMatch(/--etcd-username needs --etcd-password .*TWILL_ERR_OPTION_INVALID/);
    const b = await twill(['config', 'get', '--etcd-endpoints', authed.endpoint, '--etcd-password', PASSWORD]);
    expect(b.stderr).toMatch(/--etcd-password needs --etcd-username .*TWILL_ERR_OPTION_INVALID/);
    expect(b.stderr).not.toContain(PASSWORD);
  });
});
