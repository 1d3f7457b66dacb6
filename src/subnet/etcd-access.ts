import { readFileSync } from 'node:fs';
import { TwillError } from '../errors.js';
import type { EtcdRegistryOptions } from './etcd-registry.js';

/**
 * How to reach a secured etcd: TLS files (paths only; their contents are read when the client is
 * built and never kept in options or logs) and password auth. Parsed once from the flags.
 */
export interface EtcdAccess {
  /** CA bundle that signed etcd's server certificate (--etcd-cafile); null = system roots. */
  readonly caFile: string | null;
  /** Client certificate and key (--etcd-certfile, --etcd-keyfile), for etcd's --client-cert-auth. */
  readonly certFile: string | null;
  readonly keyFile: string | null;
  /** etcd user auth (--etcd-username, --etcd-password); the password is redacted in logs. */
  readonly auth: { readonly username: string; readonly password: string } | null;
}

export const NO_ETCD_ACCESS: EtcdAccess = Object.freeze({ caFile: null, certFile: null, keyFile: null, auth: null });

export interface EtcdAccessFlags {
  etcdCafile?: string;
  etcdCertfile?: string;
  etcdKeyfile?: string;
  etcdUsername?: string;
  etcdPassword?: string;
}

const invalid = (message: string) => new TwillError('TWILL_ERR_OPTION_INVALID', message);

/** Checks the flags' combinations; reads no file yet. */
export function parseEtcdAccess(flags: EtcdAccessFlags, endpoints: readonly string[]): EtcdAccess {
  const caFile = flags.etcdCafile || null;
  const certFile = flags.etcdCertfile || null;
  const keyFile = flags.etcdKeyfile || null;
  if ((certFile === null) !== (keyFile === null)) throw invalid('--etcd-certfile and --etcd-keyfile go together: give both or neither');
  if ((caFile || certFile) && endpoints.some((e) => e.startsWith('http://'))) {
    throw invalid('--etcd-cafile/--etcd-certfile need https:// endpoints in --etcd-endpoints');
  }
  const username = flags.etcdUsername || null;
  const password = flags.etcdPassword ?? null;
  if (username === null && password !== null) throw invalid('--etcd-password needs --etcd-username');
  if (username !== null && password === null) throw invalid('--etcd-username needs --etcd-password (or TWILL_ETCD_PASSWORD)');
  const auth = username !== null && password !== null ? Object.freeze({ username, password }) : null;
  return Object.freeze({ caFile, certFile, keyFile, auth });
}

function readPem(flag: string, path: string): Buffer {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (err) {
    throw new TwillError('TWILL_ERR_ETCD_TLS_FILE', `${flag}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err, details: { flag, path } });
  }
  if (!data.includes('-----BEGIN ')) throw new TwillError('TWILL_ERR_ETCD_TLS_FILE', `${flag}: ${path} is not a PEM file`, { details: { flag, path } });
  return data;
}

/** The etcd3 client's credentials and auth for this access; reads the TLS files now. */
export function etcdClientSecurity(access: EtcdAccess): Pick<EtcdRegistryOptions, 'credentials' | 'auth'> {
  const out: { credentials?: EtcdRegistryOptions['credentials']; auth?: EtcdRegistryOptions['auth'] } = {};
  if (access.caFile || access.certFile) {
    out.credentials = {
      // A client certificate without --etcd-cafile: grpc's createSsl takes null for the system roots.
      rootCertificate: access.caFile ? readPem('--etcd-cafile', access.caFile) : (null as unknown as Buffer),
      ...(access.certFile && access.keyFile && {
        certChain: readPem('--etcd-certfile', access.certFile),
        privateKey: readPem('--etcd-keyfile', access.keyFile),
      }),
    };
  }
  if (access.auth) out.auth = { username: access.auth.username, password: access.auth.password };
  return out;
}
