import type { ExecFn } from './routes.js';

/**
 * The host's `iptables` (whichever backend it is: iptables-nft or legacy), bound to one
 * namespace. `-w` waits for the xtables lock instead of failing when another tool holds it.
 */
export interface IptablesOps {
  /** `iptables -t TABLE -S CHAIN`: the policy and rules as iptables arguments. */
  listChain(table: string, chain: string): Promise<string>;
  /** Inserts a rule at `position` (1 = top). */
  insert(table: string, chain: string, position: number, spec: readonly string[]): Promise<void>;
  /** Deletes the first rule matching `spec` exactly. */
  delete(table: string, chain: string, spec: readonly string[]): Promise<void>;
  /** True when iptables is iptables-nft (its changes then show in `nft monitor`); false for legacy. */
  usesNftables(): Promise<boolean>;
}

export function createIptablesOps(run: ExecFn, netns?: string): IptablesOps {
  const ns = netns === undefined ? {} : { netns };
  return {
    async listChain(table, chain) {
      return (await run('iptables', ['-w', '-t', table, '-S', chain], ns)).stdout;
    },
    async insert(table, chain, position, spec) {
      await run('iptables', ['-w', '-t', table, '-I', chain, String(position), ...spec], ns);
    },
    async delete(table, chain, spec) {
      await run('iptables', ['-w', '-t', table, '-D', chain, ...spec], ns);
    },
    async usesNftables() {
      // "iptables v1.8.9 (nf_tables)" or "iptables v1.8.9 (legacy)".
      return (await run('iptables', ['-V'], ns)).stdout.includes('nf_tables');
    },
  };
}
