import { readFileSync } from 'node:fs';
import type { NetConfigSeed } from '../agent/options.js';
import { validateNetworkConfig } from '../agent/network-config.js';
import { TwillError } from '../errors.js';

/**
 * `--net-config-file`: read and checked once, when the options are parsed, so that a bad file
 * stops the agent before it writes anything (the error names the file and the field).
 */
export function readNetConfigFile(path: string): NetConfigSeed {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `--net-config-file: cannot read ${path}: ${(err as Error).message}`, { cause: err, details: { path } });
  }
  try {
    validateNetworkConfig(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const field = err instanceof TwillError ? err.details['field'] : undefined;
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `--net-config-file ${path}: ${why}`, { cause: err, details: { path, ...(field === undefined ? {} : { field }) } });
  }
  return Object.freeze({ path, text });
}
