import { describe, expect, it } from 'vitest';
import { checkTtl, parseBool, parseDurationSeconds } from '../../src/agent/options.js';
import { parseEndpoints, parsePrefix } from '../../src/cli/etcd-flags.js';
import { isTwillError } from '../../src/errors.js';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isTwillError(err) ? err.code : 'other';
  }
  return undefined;
}

describe('agent options', () => {
  it('parses durations as flannel does', () => {
    expect(parseDurationSeconds('--x', '24h')).toBe(86400);
    expect(parseDurationSeconds('--x', '1h30m')).toBe(5400);
    expect(parseDurationSeconds('--x', '90s')).toBe(90);
    expect(parseDurationSeconds('--x', '120')).toBe(120);
    expect(code(() => parseDurationSeconds('--x', '3 hours'))).toBe('TWILL_ERR_OPTION_INVALID');
    expect(code(() => parseDurationSeconds('--x', '5h!'))).toBe('TWILL_ERR_OPTION_INVALID');
    expect(code(() => checkTtl(2))).toBe('TWILL_ERR_OPTION_INVALID');
  });

  it('checks etcd endpoints and prefix', () => {
    expect(parseEndpoints('http://127.0.0.1:2379, https://e2:2379')).toEqual(['http://127.0.0.1:2379', 'https://e2:2379']);
    expect(code(() => parseEndpoints(''))).toBe('TWILL_ERR_OPTION_INVALID');
    expect(code(() => parseEndpoints('127.0.0.1:2379'))).toBe('TWILL_ERR_OPTION_INVALID');
    expect(parsePrefix('/coreos.com/network/')).toBe('/coreos.com/network');
    expect(code(() => parsePrefix('coreos.com'))).toBe('TWILL_ERR_OPTION_INVALID');
  });
});

describe('boolean agent options', () => {
  it('take true/false from flags and TWILL_* values', () => {
    expect(parseBool('--ip-masq', true)).toBe(true);
    expect(parseBool('--ip-masq', 'true')).toBe(true);
    expect(parseBool('--forward-rules', 'false')).toBe(false);
    expect(parseBool('--forward-rules', ' 0 ')).toBe(false);
    expect(code(() => parseBool('--ip-masq', 'maybe'))).toBe('TWILL_ERR_OPTION_INVALID');
  });
});
