import { describe, expect, it } from 'vitest';
import { parseEtcdAccess } from '../../src/subnet/etcd-access.js';
import { memoryLogger } from '../support/logger.js';

const SECRET = 's3cret-pw';

describe('log redaction', () => {
  it('censors a password in a nested options object, at any depth', () => {
    const { logger, lines } = memoryLogger();
    const access = parseEtcdAccess({ etcdUsername: 'root', etcdPassword: SECRET }, ['https://10.0.0.2:2379']);
    logger.info({ options: { etcd: { access: { password: SECRET } } } }, 'depth 4');
    logger.info({ options: Object.freeze({ etcdEndpoints: ['https://10.0.0.2:2379'], etcdAccess: access }) }, 'frozen options');
    let deep: Record<string, unknown> = { etcdPassword: SECRET };
    for (let i = 0; i < 40; i++) deep = { [`level${i}`]: deep };
    logger.info({ deep }, 'depth 41');
    logger.info({ peers: [{ name: 'a', credentials: { privateKey: Buffer.from(SECRET) } }] }, 'in an array');
    const text = JSON.stringify(lines());
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(Buffer.from(SECRET).toString('base64'));
    const first = lines()[0] as { options: { etcd: { access: { password: string } } } };
    expect(first.options.etcd.access.password).toBe('[redacted]');
    expect(text).toContain('"username":"root"'); // only the secret goes
    expect(lines().map((l) => l.msg)).toEqual(['depth 4', 'frozen options', 'depth 41', 'in an array']);
  });

  it('leaves the logged object alone, and copes with a cycle', () => {
    const { logger, lines } = memoryLogger();
    const options: Record<string, unknown> = { etcd: { password: SECRET } };
    options.self = options;
    logger.info({ options }, 'cyclic');
    expect((options.etcd as { password: string }).password).toBe(SECRET);
    expect(JSON.stringify(lines())).not.toContain(SECRET);
    expect(lines()[0]?.msg).toBe('cyclic');
  });
});
