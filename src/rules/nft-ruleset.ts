/**
 * Pure: the nftables table twill owns (`table ip twill`), rendered for a Network N and the own
 * subnet S. Rendered exactly as `nft list table ip twill` prints it, so drift (a deleted table, a
 * deleted or changed rule) is found by comparing normalized text. No I/O here.
 */
export const TWILL_NFT_FAMILY = 'ip';
export const TWILL_NFT_TABLE = 'twill';

/** kube-proxy's masquerade mark: packets it marks are its to NAT, not ours. */
export const KUBE_PROXY_MARK = '0x00004000';

export interface MasqSpec {
  /** The cluster network N, e.g. "10.244.0.0/16". */
  readonly network: string;
  /** This node's lease S, e.g. "10.244.1.0/24". */
  readonly subnet: string;
}

/** flannel's ip-masq logic as one nat chain; the first matching rule decides. */
export function masqRules({ network: n, subnet: s }: MasqSpec): string[] {
  return [
    `meta mark & ${KUBE_PROXY_MARK} == ${KUBE_PROXY_MARK} return`,
    `ip saddr ${s} ip daddr ${n} return`,
    `ip saddr ${n} ip daddr ${s} return`,
    `ip saddr != ${n} ip daddr ${s} return`,
    `ip saddr ${n} ip daddr != 224.0.0.0/4 masquerade fully-random`,
    `ip saddr != ${n} ip daddr ${n} masquerade fully-random`,
  ];
}

/** The whole table, in `nft list` format (tabs and all). */
export function renderTwillTable(spec: MasqSpec): string {
  return [
    `table ${TWILL_NFT_FAMILY} ${TWILL_NFT_TABLE} {`,
    '\tchain postrouting {',
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    ...masqRules(spec).map((r) => `\t\t${r}`),
    '\t}',
    '}',
    '',
  ].join('\n');
}

/** The rules of the table's postrouting chain as `nft list table ip twill` prints them, one each (renderTwillTable read back). */
export function listedMasqRules(listing: string): string[] {
  const lines = normalizeNft(listing).split('\n');
  const start = lines.indexOf('chain postrouting {');
  const end = lines.indexOf('}', start);
  if (start < 0 || end < 0) return [];
  // The chain's header line (type, hook, priority, policy) is not a rule.
  return lines.slice(start + 1, end).filter((l) => !l.startsWith('type '));
}

/**
 * One `nft -f -` transaction that replaces the table atomically: create it if missing (so the
 * delete cannot fail), delete it, then add the full new one. With `desired` null it only removes it.
 */
export function replaceScript(desired: string | null): string {
  const head = [`table ${TWILL_NFT_FAMILY} ${TWILL_NFT_TABLE} {`, '}', `delete table ${TWILL_NFT_FAMILY} ${TWILL_NFT_TABLE}`];
  return [...head, ...(desired === null ? [''] : [desired])].join('\n');
}

/** Lines without indentation or blank lines: nft's own spacing is not part of the rules. */
export function normalizeNft(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim().replace(/\s+/g, ' '))
    .filter((l) => l !== '')
    .join('\n');
}

export type TableDrift = 'in-sync' | 'missing' | 'changed' | 'unwanted';

/** Compares the table as listed (null: absent) with the desired one (null: none wanted). */
export function tableDrift(desired: string | null, actual: string | null): TableDrift {
  if (desired === null) return actual === null ? 'in-sync' : 'unwanted';
  if (actual === null) return 'missing';
  return normalizeNft(desired) === normalizeNft(actual) ? 'in-sync' : 'changed';
}

