import { Option, type Command } from 'commander';
import { TwillError } from '../errors.js';

/** Flags every command that talks to etcd shares; each also reads TWILL_<FLAG>. */
export function addEtcdOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--etcd-endpoints <urls>', 'comma-separated etcd endpoints').env('TWILL_ETCD_ENDPOINTS').default('http://127.0.0.1:2379'))
    .addOption(new Option('--etcd-prefix <prefix>', 'etcd key prefix').env('TWILL_ETCD_PREFIX').default('/coreos.com/network'));
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
