import { hostname } from 'node:os';
import { Option, type Command } from 'commander';
import { DEFAULT_STATUS_ADDR, parseHostPort, type HostPort } from '../api/addr.js';

export interface StatusFlags {
  statusAddr: string;
  nodeName?: string;
}

/** The agent's status-API flags; each also reads its TWILL_* variable. */
export function addStatusOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--status-addr <host:port>', 'where the status API (/healthz, /readyz, /v1/status, /metrics) listens').env('TWILL_STATUS_ADDR').default(DEFAULT_STATUS_ADDR))
    .addOption(new Option('--node-name <name>', 'the node name in the status (default: the hostname)').env('TWILL_NODE_NAME'));
}

export function statusOptions(flags: StatusFlags): { statusAddr: HostPort; nodeName: string } {
  return { statusAddr: parseHostPort('--status-addr', flags.statusAddr), nodeName: flags.nodeName ?? hostname() };
}
