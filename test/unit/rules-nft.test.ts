import { describe, expect, it } from 'vitest';
import { normalizeNft, renderTwillTable, replaceScript, tableDrift } from '../../src/rules/nft-ruleset.js';

const SPEC = { network: '10.244.0.0/16', subnet: '10.244.1.0/24' };

// What `nft list table ip twill` (nftables 1.0.6) printed after loading the rendered table.
const LISTED = `table ip twill {
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tmeta mark & 0x00004000 == 0x00004000 return
\t\tip saddr 10.244.1.0/24 ip daddr 10.244.0.0/16 return
\t\tip saddr 10.244.0.0/16 ip daddr 10.244.1.0/24 return
\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.1.0/24 return
\t\tip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random
\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random
\t}
}
`;

describe('the ip-masq table', () => {
  it("renders flannel's masquerade logic exactly as nft lists it", () => {
    expect(renderTwillTable(SPEC)).toBe(LISTED);
  });

  it('replaces the table in one transaction, or only removes it', () => {
    expect(replaceScript(renderTwillTable(SPEC))).toBe(`table ip twill {\n}\ndelete table ip twill\n${LISTED}`);
    expect(replaceScript(null)).toBe('table ip twill {\n}\ndelete table ip twill\n');
  });

  it('ignores spacing when comparing', () => {
    expect(normalizeNft(LISTED.replaceAll('\t', '    ') + '\n\n')).toBe(normalizeNft(LISTED));
  });

  it('tells a missing table, a deleted rule and a changed subnet apart from a table in place', () => {
    const desired = renderTwillTable(SPEC);
    expect(tableDrift(desired, LISTED)).toBe('in-sync');
    expect(tableDrift(desired, null)).toBe('missing');
    const withoutRule = LISTED.split('\n').filter((l) => !l.includes('224.0.0.0/4')).join('\n');
    expect(tableDrift(desired, withoutRule)).toBe('changed');
    expect(tableDrift(renderTwillTable({ ...SPEC, subnet: '10.244.2.0/24' }), LISTED)).toBe('changed');
    expect(tableDrift(desired, 'table ip twill {\n}\n')).toBe('changed');
    expect(tableDrift(null, LISTED)).toBe('unwanted');
    expect(tableDrift(null, null)).toBe('in-sync');
  });
});
