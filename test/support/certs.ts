import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec } from '../../src/kernel/exec.js';

export interface TestPki {
  readonly dir: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A second CA that signed nothing etcd trusts, for the negative cases. */
  readonly otherCa: string;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A throwaway CA with a server certificate for 127.0.0.1 and a client certificate, made by Debian's openssl. */
export async function makePki(dir: string): Promise<TestPki> {
  await mkdir(dir, { recursive: true });
  const f = (name: string) => join(dir, name);
  const ca = async (name: string) =>
    exec('openssl', ['req', '-x509', ...EC, '-days', '2', '-subj', `/CN=twill test ${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.crt`)]);
  const leaf = async (name: string, ext: string) => {
    await writeFile(f(`${name}.ext`), ext);
    await exec('openssl', ['req', '-new', ...EC, '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`)]);
    await exec('openssl', ['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
      '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.crt`)]);
  };
  await ca('ca');
  await ca('other-ca');
  // clientAuth too: etcd's own gateway dials etcd with the server certificate.
  await leaf('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  await leaf('client', 'extendedKeyUsage=clientAuth\n');
  return { dir, ca: f('ca.crt'), serverCert: f('server.crt'), serverKey: f('server.key'), clientCert: f('client.crt'), clientKey: f('client.key'), otherCa: f('other-ca.crt') };
}
