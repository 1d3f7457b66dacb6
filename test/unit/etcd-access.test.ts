import { describe, expect, it } from 'vitest';
import { isTwillError } from '../../src/errors.js';
import { etcdClientSecurity, parseEtcdAccess } from '../../src/subnet/etcd-access.js';
import { memoryLogger } from '../support/logger.js';

const HTTPS = ['https://10.0.0.2:2379'];

describe('etcd access flags', () => {
  it('a CA alone is enough; no files means no credentials', () => {
    expect(parseEtcdAccess({ etcdCafile: '/ca.pem' }, HTTPS)).toEqual({ caFile: '/ca.pem', certFile: null, keyFile: null, auth: null });
    expect(etcdClientSecurity(parseEtcdAccess({}, ['http://127.0.0.1:2379']))).toEqual({});
  });

  it('user and password go together', () => {
    expect(parseEtcdAccess({ etcdUsername: 'u', etcdPassword: 'p' }, ['http://e:2379']).auth).toEqual({ username: 'u', password: 'p' });
    for (const flags of [{ etcdUsername: 'u' }, { etcdPassword: 'p' }, { etcdCertfile: '/c' }, { etcdKeyfile: '/k' }]) {
      expect(() => parseEtcdAccess(flags, HTTPS)).toThrow(expect.objectContaining({ code: 'TWILL_ERR_OPTION_INVALID' }) as Error);
    }
  });

  it('TLS files need https endpoints', () => {
    let err: unknown;
    try {
      parseEtcdAccess({ etcdCafile: '/ca.pem' }, ['http://e:2379']);
    } catch (e) {
      err = e;
    }
    expect(isTwillError(err, 'TWILL_ERR_OPTION_INVALID')).toBe(true);
  });

  it('the logger redacts the password wherever the access object is logged', () => {
    const { logger, lines } = memoryLogger();
    const access = parseEtcdAccess({ etcdUsername: 'root', etcdPassword: 's3cret-pw' }, HTTPS);
    logger.info({ etcdAccess: access }, 'a');
    logger.info({ options: { etcdPassword: 's3cret-pw' } }, 'b');
    logger.info({ auth: access.auth }, 'c');
    expect(JSON.stringify(lines())).not.toContain('s3cret-pw');
    expect(JSON.stringify(lines())).toContain('"username":"root"');
  });
});
