import { Option, type Command } from 'commander';
import { DEFAULT_STATUS_ADDR, parseHostPort } from '../api/addr.js';
import { fetchStatus } from '../api/client.js';
import { renderAgentStatus } from './status-render.js';

interface StatusCmdFlags {
  addr: string;
  json?: boolean;
}

async function status(flags: StatusCmdFlags): Promise<void> {
  const s = await fetchStatus(parseHostPort('--addr', flags.addr));
  process.stdout.write(flags.json ? `${JSON.stringify(s, null, 2)}\n` : renderAgentStatus(s));
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description("one agent's lease, backend, etcd connection and peers, from its status API")
    .addOption(new Option('--addr <host:port>', "the agent's --status-addr").env('TWILL_STATUS_ADDR').default(DEFAULT_STATUS_ADDR))
    .option('--json', 'print the raw status JSON (GET /v1/status)')
    .action(status);
}
