import { Option, type Command } from 'commander';
import { DEFAULT_STATUS_ADDR, parseHostPort } from '../api/addr.js';
import { fetchTrace } from '../api/client.js';
import type { PathTrace } from '../trace/path.js';

interface TraceCmdFlags {
  addr: string;
  from?: string;
  json?: boolean;
}

/** The chain, one numbered line per step, then each problem with its fix. */
export function renderTrace(t: PathTrace): string {
  const lines = [`trace to ${t.dst}${t.from ? ` from ${t.from}` : ''}:`, ...t.steps.map((s, i) => `  ${i + 1}. ${s.step.padEnd(11)} ${s.text}`)];
  if (t.problems.length === 0) lines.push('', 'the path is complete');
  else lines.push('', `${t.problems.length} problem(s):`, ...t.problems.flatMap((p) => [`  - ${p.message} [${p.code}]`, `    fix: ${p.fix}`]));
  return `${lines.join('\n')}\n`;
}

async function trace(dst: string, flags: TraceCmdFlags): Promise<void> {
  const t = await fetchTrace(parseHostPort('--addr', flags.addr), dst, flags.from);
  process.stdout.write(flags.json ? `${JSON.stringify(t, null, 2)}\n` : renderTrace(t));
  // 1: the path is broken somewhere (named above); errors reaching the agent exit 2 from main.
  if (!t.complete) process.exitCode = 1;
}

export function registerTraceCommand(program: Command): void {
  program
    .command('trace')
    .description("the way a packet from this node's pods takes to an address: lease, route, neighbour, carriage, MTU, forwarding, masquerade; each problem with its fix (exit 1 when the path is broken)")
    .argument('<destination>', 'an IPv4 address (a pod on another node, usually)')
    .addOption(new Option('--addr <host:port>', "the agent's --status-addr").env('TWILL_STATUS_ADDR').default(DEFAULT_STATUS_ADDR))
    .option('--from <source>', "a source address: one of this node's pods (its packets arrive on the CNI bridge), or the node's own")
    .option('--json', 'print the trace as JSON (GET /v1/trace?dst=)')
    .action(trace);
}
