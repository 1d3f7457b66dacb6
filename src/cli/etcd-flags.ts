import { Option, type Command } from 'commander';
import { TwillError } from '../errors.js';
import { parseEtcdAccess, type EtcdAccess, type EtcdAccessFlags } from '../subnet/etcd-access.js';

/** What commander hands over for the shared etcd flags. */
export interface EtcdFlags extends EtcdAccessFlags {
  etcdEndpoints: string;
  etcdPrefix: string;
}

/** Flags every command that talks to etcd shares; each also reads TWILL_<FLAG>. */
export function addEtcdOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--etcd-endpoints <urls>', 'comma-separated etcd endpoints').env('TWILL_ETCD_ENDPOINTS').default('http://127.0.0.1:2379'))
    .addOption(new Option('--etcd-prefix <prefix>', 'etcd key prefix').env('TWILL_ETCD_PREFIX').default('/coreos.com/network'))
    .addOption(new Option('--etcd-cafile <path>', "CA certificate(s) that signed etcd's server certificate (PEM)").env('TWILL_ETCD_CAFILE'))
    .addOption(new Option('--etcd-certfile <path>', 'client certificate for etcd (PEM), with --etcd-keyfile').env('TWILL_ETCD_CERTFILE'))
    .addOption(new Option('--etcd-keyfile <path>', "the client certificate's private key (PEM)").env('TWILL_ETCD_KEYFILE'))
    .addOption(new Option('--etcd-username <name>', 'etcd user (etcd auth)').env('TWILL_ETCD_USERNAME'))
    .addOption(new Option('--etcd-password <password>', "the etcd user's password (prefer TWILL_ETCD_PASSWORD: flags show in ps)").env('TWILL_ETCD_PASSWORD'));
}

/** The shared etcd flags, checked: endpoints, prefix and how to authenticate. */
export function parseEtcdFlags(flags: EtcdFlags): { endpoints: readonly string[]; prefix: string; access: EtcdAccess } {
  const endpoints = Object.freeze(parseEndpoints(flags.etcdEndpoints));
  return { endpoints, prefix: parsePrefix(flags.etcdPrefix), access: parseEtcdAccess(flags, endpoints) };
}

export function parseEndpoints(text: string): string[] {
  const urls = text.split(',').map((s) => s.trim()).filter(Boolean);
  if (urls.length === 0) throw new TwillError('TWILL_ERR_OPTION_INVALID', '--etcd-endpoints: give at least one URL');
  for (const url of urls) {
    if (!/^https?:\/\/[^/]+$/.test(url.replace(/\/$/, ''))) {
      throw new TwillError('TWILL_ERR_OPTION_INVALID', `--etcd-endpoints: "${url}" is not an http(s)://host:port URL`);
    }
  }
  return urls;
}

export function parsePrefix(text: string): string {
  if (!text.startsWith('/')) throw new TwillError('TWILL_ERR_OPTION_INVALID', `--etcd-prefix: "${text}" must start with /`);
  return text.replace(/\/+$/, '');
}
