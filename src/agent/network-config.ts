import type { BackendFactory } from '../backend/backend.js';
import { backendFactory, type BackendTable } from '../backend/index.js';
import { TwillError, isTwillError } from '../errors.js';
import { parseNetworkConfig } from '../subnet/config.js';
import type { NetworkConfig } from '../subnet/types.js';

/** The agent's and `twill config set`'s one validation: the contract's rules, a known backend, and that backend's own options. */
export function validateNetworkConfig(text: string, backends?: BackendTable): NetworkConfig {
  const config = parseNetworkConfig(text);
  knownBackend(config.backend.type, backends).parseOptions(config.backend.raw);
  return config;
}

function knownBackend(type: string, backends?: BackendTable): BackendFactory {
  try {
    return backendFactory(type, backends);
  } catch (err) {
    if (!isTwillError(err, 'TWILL_ERR_BACKEND_UNKNOWN')) throw err;
    throw new TwillError('TWILL_ERR_CONFIG_INVALID', `network config: Backend.Type ${err.message}`, { cause: err, details: { field: 'Backend.Type' } });
  }
}
