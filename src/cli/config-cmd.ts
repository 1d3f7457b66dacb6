import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { TwillError } from '../errors.js';
import { validateNetworkConfig } from '../agent/network-config.js';
import { describeConfig } from '../subnet/config.js';
import { etcdClientSecurity } from '../subnet/etcd-access.js';
import { EtcdRegistry } from '../subnet/etcd-registry.js';
import { addEtcdOptions, parseEtcdFlags, parsePrefix, type EtcdFlags } from './etcd-flags.js';

function registryFrom(flags: EtcdFlags): EtcdRegistry {
  const { endpoints, prefix, access } = parseEtcdFlags(flags);
  return new EtcdRegistry({ endpoints, prefix, ...etcdClientSecurity(access) });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

async function setConfig(flags: EtcdFlags & { file?: string }): Promise<void> {
  const text = flags.file ? await readFile(flags.file, 'utf8') : await readStdin();
  if (text.trim() === '') throw new TwillError('TWILL_ERR_CONFIG_INVALID', 'network config: empty input (give --file or JSON on stdin)');
  const config = validateNetworkConfig(text); // throws before anything is written
  const registry = registryFrom(flags);
  try {
    await registry.putConfig(text.trim());
  } finally {
    registry.close();
  }
  process.stdout.write(`${JSON.stringify(describeConfig(config))}\n`);
}

async function getConfig(flags: EtcdFlags): Promise<void> {
  const registry = registryFrom(flags);
  try {
    const text = await registry.getConfig();
    if (text === null) throw new TwillError('TWILL_ERR_CONFIG_MISSING', `no network config at ${parsePrefix(flags.etcdPrefix)}/config`);
    process.stdout.write(`${text}\n`);
  } finally {
    registry.close();
  }
}

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('read and write the cluster network config in etcd');
  addEtcdOptions(config.command('set').description('validate and write <prefix>/config (from --file or stdin)'))
    .option('--file <path>', 'read the JSON from this file instead of stdin')
    .action((flags: EtcdFlags & { file?: string }) => setConfig(flags));
  addEtcdOptions(config.command('get').description('print <prefix>/config')).action((flags: EtcdFlags) => getConfig(flags));
}
