import type { Command } from 'commander';
import { TwillError } from '../../errors.js';
import { pingMatrix } from './check.js';
import { labDown } from './down.js';
import { agentStatusAddr } from './prometheus.js';
import { ETCD_MEMBER_COUNTS, parseEtcdMembers } from './etcd-members.js';
import { DEFAULT_LAB_NAME, defaultLabDir, parseIntOption, validateLabName } from './naming.js';
import { assertRoot, requirePrograms } from './preflight.js';
import { allReachable, renderMatrix } from './render.js';
import { restartAgent } from './restart.js';
import { requireState } from './state.js';
import { labStatus, renderStatus } from './status.js';
import { LAB_BACKENDS, MAX_HOSTS, MAX_PODS_PER_HOST, parseBackend, type LabOptions } from './topology.js';
import { LAB_TOPOLOGIES, parseTopology } from './underlay.js';
import { labUp } from './up.js';
import { withInterrupt } from './interrupt.js';
import { DEFAULT_UI_PORT, parseUiPort, serveLabUi } from './ui/serve.js';
import { renderLabTrace } from './trace/render.js';
import { runLabTrace } from './trace/run.js';

interface Where {
  readonly name: string;
  readonly dir: string;
}

const out = (text: string): void => void process.stdout.write(text);
const progress = (line: string): void => void process.stderr.write(`lab: ${line}\n`);

function where(raw: { name: string; dir?: string }): Where {
  const name = validateLabName(raw.name);
  return Object.freeze({ name, dir: raw.dir ?? defaultLabDir(name) });
}

interface RawUp {
  readonly name: string;
  readonly dir?: string;
  readonly hosts: string;
  readonly backend: string;
  readonly topology: string;
  readonly podsPerHost: string;
  readonly ipMasq?: boolean;
  readonly prometheus?: boolean;
  readonly etcdMembers: string;
  readonly directRouting?: boolean;
  readonly udpDatapath?: string;
  /** --ui [port]: true without a port. */
  readonly ui?: boolean | string;
}

function parseUdpDatapath(text: string): 'native' | 'dgram' {
  if (text === 'native' || text === 'dgram') return text;
  throw new TwillError('TWILL_ERR_OPTION_INVALID', `--udp-datapath: "${text}" is not native or dgram`, { details: { udpDatapath: text } });
}

function upOptions(raw: RawUp): LabOptions {
  return Object.freeze({
    ...where(raw),
    hosts: parseIntOption(raw.hosts, '--hosts', 1, MAX_HOSTS),
    podsPerHost: parseIntOption(raw.podsPerHost, '--pods-per-host', 1, MAX_PODS_PER_HOST),
    backend: parseBackend(raw.backend),
    topology: parseTopology(raw.topology),
    ipMasq: raw.ipMasq === true,
    prometheus: raw.prometheus === true,
    etcdMembers: parseEtcdMembers(raw.etcdMembers),
    directRouting: raw.directRouting === true,
    ...(raw.udpDatapath === undefined ? {} : { udpDatapath: parseUdpDatapath(raw.udpDatapath) }),
  });
}


async function up(raw: RawUp): Promise<void> {
  const opts = upOptions(raw);
  const uiPort = raw.ui === undefined ? null : parseUiPort(raw.ui === true ? String(DEFAULT_UI_PORT) : String(raw.ui), '--ui');
  const t0 = Date.now();
  const state = await withInterrupt('lab', (deps) => labUp(opts, deps));
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  out(`lab ${opts.name} is up in ${secs} s: ${state.hosts.length} hosts, ${state.pods.length} pods, ${opts.topology} underlay; state in ${opts.dir}/state.json\n`);
  out(`  etcd ${state.etcd.members.map((m) => `${m.name} ${m.endpoint}`).join(', ')} in ${state.etcd.ns}\n`);
  for (const h of state.hosts) out(`  ${h.id} ${h.ns} segment ${h.segment} ${h.ip} subnet ${h.subnet ?? '-'} status API ${agentStatusAddr(h)}\n`);
  if (state.prometheus) out(`  prometheus ${state.prometheus.url} in ${state.prometheus.ns} (e.g. ip netns exec ${state.prometheus.ns} curl '${state.prometheus.url}/api/v1/query?query=twill_peers')\n`);
  if (uiPort !== null) await serveLabUi(opts, uiPort, out);
}

async function ui(raw: { name: string; dir?: string; port: string }): Promise<void> {
  await serveLabUi(where(raw), parseUiPort(raw.port), out);
}

async function check(raw: { name: string; dir?: string }): Promise<void> {
  assertRoot();
  await requirePrograms(['ip', 'ping']);
  const w = where(raw);
  const state = await requireState(w.dir, w.name);
  const results = await pingMatrix(state);
  out(renderMatrix(state.pods.map((p) => p.id), results));
  if (!allReachable(results)) process.exitCode = 1;
}

async function status(raw: { name: string; dir?: string }): Promise<void> {
  assertRoot();
  const w = where(raw);
  out(renderStatus(await labStatus(await requireState(w.dir, w.name))));
}

async function down(raw: { name: string; dir?: string }): Promise<void> {
  assertRoot();
  const w = where(raw);
  const s = await labDown(w.name, w.dir);
  out(`lab ${w.name} down: ${s.processes} process(es) stopped, ${s.namespaces.length} namespace(s) deleted, ${w.dir} ${s.dir}\n`);
  if (s.dir === 'kept') progress(`${w.dir} holds no state.json, so it was left in place`);
}

async function restart(raw: { name: string; dir?: string; host: string }): Promise<void> {
  const w = where(raw);
  const state = await requireState(w.dir, w.name);
  const host = `h${parseIntOption(raw.host, '--host', 1, state.options.hosts)}`;
  const r = await withInterrupt('lab', (deps) => restartAgent(state, host, deps));
  const same = r.before === r.env.subnetNet ? 'kept' : `changed from ${r.before ?? '-'}`;
  out(`${host}: agent restarted, subnet ${r.env.subnetNet} (${same})\n`);
}

async function trace(from: string, to: string, raw: { name: string; dir?: string; json?: boolean }): Promise<void> {
  assertRoot();
  await requirePrograms(['ip', 'ping', 'tcpdump']);
  const w = where(raw);
  const t = await runLabTrace(await requireState(w.dir, w.name), from, to);
  out(raw.json === true ? `${JSON.stringify(t, null, 2)}\n` : renderLabTrace(t));
  if (!t.complete) process.exitCode = 1;
}

function common(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'lab name (1-6 lower-case letters/digits); namespaces are twl-<name>-*', DEFAULT_LAB_NAME)
    .option('--dir <path>', 'lab directory for state, logs and data (default: /tmp/twill-lab/<name>)');
}

export function registerLabCommands(program: Command): void {
  const lab = program.command('lab').description('a multi-host lab in network namespaces on this machine (root)');
  common(lab.command('up').description('build the lab: underlay, etcd, one agent per host, pods via CNI'))
    .requiredOption('--hosts <n>', `number of hosts (1-${MAX_HOSTS})`)
    .requiredOption('--backend <type>', `backend written to the network config (${LAB_BACKENDS.join(', ')})`)
    .option('--topology <kind>', `underlay: ${LAB_TOPOLOGIES.join(' or ')} (routed: two L2 segments joined by a router)`, 'flat')
    .option('--pods-per-host <n>', 'pods on each host', '1')
    .option('--ip-masq', 'run the agents with --ip-masq (pods reach the outside namespace as their host)')
    .option('--prometheus', "also run Prometheus in the etcd namespace, scraping every agent's /metrics each second")
    .option('--direct-routing', 'write Backend.DirectRouting: true (vxlan, udp): peers on the same segment are routed without the tunnel')
    .option('--udp-datapath <kind>', 'udp agents: native (the pump in C, their default) or dgram (the Node.js reference)')
    .option('--ui [port]', `then serve the lab page on 127.0.0.1 (port ${DEFAULT_UI_PORT}) until Ctrl-C, as "lab ui" does`)
    .option('--etcd-members <n>', `etcd cluster size (${ETCD_MEMBER_COUNTS.join(' or ')}), all in the etcd namespace; agents get every member`, '1')
    .action(up);
  common(lab.command('check').description('ping every pod from every other pod; non-zero exit on any failure')).action(check);
  common(lab.command('status').description('hosts, agents, subnets, pods and where the logs are')).action(status);
  common(lab.command('trace').description('send one ping from a pod and capture it at every hop on its way (tcpdump in each namespace); exit 1 when a hop saw nothing'))
    .argument('<from>', 'the source pod (h1-p1) or its address')
    .argument('<to>', 'a pod, a host (h2), "out" (the outside node) or an IPv4 address')
    .option('--json', 'print the trace as JSON')
    .action(trace);
  common(lab.command('ui').description('serve the lab page on 127.0.0.1: the topology, every agent live, traces drawn hop by hop'))
    .option('--port <n>', 'loopback port (0: any free one)', String(DEFAULT_UI_PORT))
    .action(ui);
  common(lab.command('down').description('stop everything and delete every namespace of the lab')).action(down);
  common(lab.command('restart-agent').description("kill one host's agent and start it again the same way"))
    .requiredOption('--host <i>', 'host number (1..N)')
    .action(restart);
}
