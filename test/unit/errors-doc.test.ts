import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CATALOG, errorCode, TwillError } from '../../src/errors.js';

interface Row {
  readonly transient: string;
  readonly meaning: string;
}

/** The rows of docs/errors.md's table: | `CODE` | transient | meaning |, a `\|` inside a cell kept as `|`. */
function documentedRows(): Map<string, Row[]> {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map<string, Row[]>();
  for (const line of doc.split('\n')) {
    if (!line.startsWith('| `TWILL_ERR_')) continue;
    const cells = line.slice(1, line.trimEnd().endsWith('|') ? line.trimEnd().length - 1 : undefined).split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
    const [code, transient, meaning] = cells;
    expect(cells, line).toHaveLength(3);
    const key = code!.replace(/^`|`$/g, '');
    rows.set(key, [...(rows.get(key) ?? []), { transient: transient!, meaning: meaning! }]);
  }
  return rows;
}

describe('error codes', () => {
  const rows = documentedRows();

  it('docs/errors.md lists every code src/errors.ts defines, once, with the same transience and meaning', () => {
    for (const [code, entry] of Object.entries(ERROR_CATALOG)) {
      expect(rows.get(code), `${code} in docs/errors.md`).toEqual([{ transient: String(entry.transient), meaning: entry.doc }]);
    }
  });

  it('src/errors.ts defines every code docs/errors.md lists', () => {
    const defined = new Set(Object.keys(ERROR_CATALOG));
    expect([...rows.keys()].filter((code) => !defined.has(code))).toEqual([]);
  });

  it('no code is mentioned in docs/errors.md without a row in its table', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const mentioned = new Set([...doc.matchAll(/TWILL_ERR_[A-Z_]+/g)].map((m) => m[0]));
    expect([...mentioned].filter((code) => !rows.has(code))).toEqual([]);
  });

  it('an error without a code shows as TWILL_ERR_UNEXPECTED, a catalogued code', () => {
    expect(errorCode(new Error('boom'))).toBe('TWILL_ERR_UNEXPECTED');
    expect(errorCode('a string')).toBe('TWILL_ERR_UNEXPECTED');
    expect(errorCode(new TwillError('TWILL_ERR_ETCD_AUTH', 'x'))).toBe('TWILL_ERR_ETCD_AUTH');
    expect(new TwillError('TWILL_ERR_UNEXPECTED', 'x').transient).toBe(false);
  });
});
