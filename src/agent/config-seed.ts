import type { Logger } from '../log.js';
import { changedFields, parseNetworkConfig } from '../subnet/config.js';
import type { LeaseRegistry } from '../subnet/registry.js';
import type { NetConfigSeed } from './options.js';

/**
 * `--net-config-file`: creates `<prefix>/config` from the file when etcd has none, in one
 * transaction, so that N agents starting at once write it once. When etcd has one already,
 * etcd's is used, and a difference from the file is said once. Throws what the registry throws
 * (the caller retries transient failures).
 */
export async function seedNetworkConfig(registry: Pick<LeaseRegistry, 'createConfig' | 'getConfig'>, seed: NetConfigSeed, log: Logger): Promise<void> {
  if (await registry.createConfig(seed.text)) {
    log.info({ file: seed.path }, 'network config created in etcd from --net-config-file');
    return;
  }
  const present = await registry.getConfig();
  if (present === null) return; // deleted meanwhile: waiting for the config says so
  const changed = differences(seed.text, present);
  if (changed.length > 0) log.warn({ file: seed.path, changed }, "network config in etcd differs from --net-config-file; using etcd's");
}

/** The fields that differ; a config in etcd that does not parse is reported by the agent's own wait. */
function differences(fileText: string, etcdText: string): string[] {
  try {
    return changedFields(parseNetworkConfig(fileText), parseNetworkConfig(etcdText));
  } catch {
    return [];
  }
}
