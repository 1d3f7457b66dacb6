import type { FeedStarter, MonitorFn } from './monitor.js';
import type { ExecFn } from './routes.js';

/** nftables, bound to one namespace: list a table, replace rulesets with `nft -f -`, delete a table. */
export interface NftOps {
  /** Names of the tables of a family (`nft list tables ip`). */
  tables(family: string): Promise<string[]>;
  /** `nft list table FAMILY NAME`; null when the table does not exist. */
  listTable(family: string, name: string): Promise<string | null>;
  /** Runs a script as one transaction (`nft -f -`): all of it applies or none. */
  apply(script: string): Promise<void>;
  /** Every ruleset change, one line each (`nft monitor`); absent where changes cannot be watched. */
  readonly events?: FeedStarter<string>;
}

export function createNftOps(run: ExecFn, netns?: string, monitor?: MonitorFn): NftOps {
  const ns = netns === undefined ? {} : { netns };
  const tables = async (family: string): Promise<string[]> => {
    const res = await run('nft', ['list', 'tables', family], ns);
    return res.stdout
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((w) => w[0] === 'table' && w[1] === family && w[2] !== undefined)
      .map((w) => w[2]!);
  };
  return {
    tables,
    async listTable(family, name) {
      if (!(await tables(family)).includes(name)) return null;
      return (await run('nft', ['list', 'table', family, name], ns)).stdout;
    },
    async apply(script) {
      await run('nft', ['-f', '-'], { ...ns, input: script });
    },
    ...(monitor ? { events: nftEventFeed(monitor, netns) } : {}),
  };
}

/** `nft monitor`, without its "# new generation" comments. */
function nftEventFeed(monitor: MonitorFn, netns: string | undefined): FeedStarter<string> {
  return (handlers) =>
    monitor('nft', ['monitor'], netns, {
      event: (line) => line !== '' && !line.startsWith('#') && handlers.event(line),
      lost: (reason) => handlers.lost(reason),
      end: (err) => handlers.end(err),
    });
}
