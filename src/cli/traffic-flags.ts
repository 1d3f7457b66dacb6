import { Option, type Command } from 'commander';
import type { AgentOptions } from '../agent/options.js';
import { BACKENDS } from '../backend/index.js';
import { createKernel } from '../kernel/index.js';
import type { Logger } from '../log.js';
import { cleanupNode } from '../rules/cleanup.js';

/** Booleans that take `=false` and a TWILL_* value ("true"/"false"), parsed by parseBool. */
export interface TrafficRuleFlags {
  ipMasq: boolean | string;
  forwardRules: boolean | string;
  cleanup?: boolean;
}

export function addTrafficRuleOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--ip-masq [bool]', 'masquerade pod traffic that leaves the cluster network (nft table ip twill)').env('TWILL_IP_MASQ').default(false))
    .addOption(new Option('--forward-rules [bool]', "accept the pod network in iptables' FORWARD chain (for hosts whose policy is DROP)").env('TWILL_FORWARD_RULES').default(true))
    .addOption(new Option('--no-forward-rules', 'same as --forward-rules=false'))
    .addOption(new Option('--cleanup', "remove twill's nft table, forward rules, routes, TUN device, vxlan devices and subnet.env on this node, then exit"));
}

/** `twill agent --cleanup`: one log line saying what was removed. */
export async function runCleanup(options: AgentOptions, logger: Logger): Promise<void> {
  const kernel = createKernel(options.netns === undefined ? {} : { netns: options.netns });
  const backends = async (): Promise<Record<string, unknown>> => {
    const removed: Record<string, unknown> = {};
    for (const factory of Object.values(BACKENDS)) Object.assign(removed, await factory.cleanup?.(kernel, options.backendFlags?.[factory.type]));
    return removed;
  };
  const removed = await cleanupNode(kernel, { subnetFile: options.subnetFile, cniConfFile: options.cniConfFile ?? null, backends });
  logger.child({ component: 'cleanup' }).info({ ...removed, path: options.subnetFile }, 'cleanup done');
}
