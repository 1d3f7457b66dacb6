import { BACKENDS, backendFactory, parseBackendFlags, type BackendTable } from '../backend/index.js';
import type { Backend, BackendFactory, ExternalInterface } from '../backend/backend.js';
import { errorCode, isTransient, TwillError, type ErrorCode } from '../errors.js';
import { createKernel, type Kernel } from '../kernel/index.js';
import type { PathTrace } from '../trace/path.js';
import { traceFromNode } from './trace.js';
import type { Logger } from '../log.js';
import { TrafficRules, type TrafficRulesStatus } from '../rules/traffic-rules.js';
import { Backoff } from '../lib/backoff.js';
import { OutageLog } from '../lib/outage-log.js';
import { etcdClientSecurity } from '../subnet/etcd-access.js';
import { EtcdRegistry } from '../subnet/etcd-registry.js';
import { formatCidr, sameNet } from '../lib/ipv4.js';
import { LeaseGate, type Rejection } from '../subnet/lease-check.js';
import { LeaseManager } from '../subnet/lease-manager.js';
import { LeaseStream, type LeaseBatchMeta, type LeaseStreamOptions } from '../subnet/lease-watch.js';
import type { LeaseRegistry, UnreadableLease } from '../subnet/registry.js';
import type { Lease, LeaseEvent, NetworkConfig } from '../subnet/types.js';
import type { AgentStatus, StatusSource } from '../status/types.js';
import { VERSION } from '../version.js';
import { EtcdProbe } from './etcd-probe.js';
import { Lifecycle } from './lifecycle.js';
import { PeerFeed } from './peer-feed.js';
import type { AgentObserver } from '../status/observer.js';
import { Telemetry } from './telemetry.js';
import { DEFAULT_CNI_NETWORK_NAME, renderConflist, writeConflist } from './cni-conflist.js';
import { seedNetworkConfig } from './config-seed.js';
import { validateNetworkConfig } from './network-config.js';
import type { AgentOptions } from './options.js';
import { formatSubnetEnv, readPreviousSubnet, writeFileAtomic } from './subnet-env.js';

/** An etcd contact lost with no error to name (a watch stream that ended without one). */
const UNREACHABLE = new TwillError('TWILL_ERR_ETCD_UNAVAILABLE', 'etcd is unreachable');

/** What the agent is built from; everything but the logger defaults to the real thing. */
export interface AgentDeps {
  readonly logger: Logger;
  /** The lease registry (default: etcd at --etcd-endpoints). */
  readonly registry?: LeaseRegistry;
  /** The kernel (default: the agent's own namespace, or --netns in tests). */
  readonly kernel?: Kernel;
  /** The backend table (default: src/backend/index.ts); tests add their own backends. */
  readonly backends?: BackendTable;
  readonly observer?: AgentObserver;
}

/** What the agent settles on at start-up, before any lease exists. */
interface Setup {
  readonly iface: ExternalInterface;
  readonly config: NetworkConfig;
  readonly factory: BackendFactory;
  /** The backend's `Backend.*` options and its flags, parsed by the backend itself. */
  readonly options: unknown;
  readonly flags: unknown;
}

/**
 * The composition root: wires kernel, lease store, lease stream and backend, and owns their
 * lifecycle. Start order: interface → etcd config → lease → backend → subnet.env → lease stream;
 * stop runs in reverse, and leaves routes and lease in place so a restart is seamless.
 */
export class Agent implements StatusSource {
  readonly lifecycle = new Lifecycle();
  private readonly log: Logger;
  /** Components get the root logger and scope it themselves (one `component` field per line). */
  private readonly rootLog: Logger;
  private readonly kernel: Kernel;
  private readonly registry: LeaseRegistry;
  private readonly backends: BackendTable;
  private setup: Setup | null = null;
  private leases: LeaseManager | null = null;
  private stream: LeaseStream | null = null;
  /** Asks etcd every 5 s (contact, and whether its config still is the one running); started last. */
  private probe: EtcdProbe | null = null;
  /** One line when etcd becomes unreachable, one when it is back, a reminder a minute between. */
  private readonly outage: OutageLog;
  private backend: Backend | null = null;
  /** ip-masq table and forward rules; null until the config is known. */
  private rules: TrafficRules | null = null;
  private lease: Lease | null = null;
  /** Backend calls run one at a time, in event order. */
  private backendQueue: Promise<void> = Promise.resolve();
  private peersSent = false;
  /** Peer events batched for the backend: what arrives while it is busy goes in its next call. */
  private readonly feed: PeerFeed;
  /** Checks every lease before the backend sees it; created with the first lease. */
  private gate: LeaseGate | null = null;
  private readonly configRetry = new Backoff(1000, 10_000);
  private starting: Promise<void> | null = null;
  /** Readiness, lease expiry and etcd contact, for the status API and metrics. */
  readonly telemetry: Telemetry;
  private iface: ExternalInterface | null = null;
  /** A permanent error the lease store stopped on; null while all is well. */
  private fatal: unknown = null;

  constructor(
    private readonly opts: AgentOptions,
    deps: AgentDeps,
  ) {
    this.rootLog = deps.logger;
    this.log = deps.logger.child({ component: 'agent' });
    this.feed = new PeerFeed({ enqueue: (task) => this.enqueue(task), apply: (events) => this.backend!.applyPeerChanges(events), logger: this.log });
    this.kernel = deps.kernel ?? createKernel(opts.netns === undefined ? {} : { netns: opts.netns });
    this.backends = deps.backends ?? BACKENDS;
    this.outage = new OutageLog({ logger: deps.logger.child({ component: 'etcd' }), subject: 'etcd' });
    const onEtcdContact = (up: boolean, why: TwillError | null) => {
      if (this.lifecycle.stopRequested) return; // closing the client fails the calls in flight: no outage
      if (up) this.outage.succeeded();
      else this.outage.failed(why ?? UNREACHABLE);
    };
    this.telemetry = new Telemetry({ nodeName: opts.nodeName, etcdEndpoints: opts.etcdEndpoints, version: VERSION, onEtcdContact, ...(deps.observer && { observer: deps.observer }) });
    this.registry = deps.registry ?? this.etcdRegistry();
  }

  /**
   * A restored watch may have found a member that has not yet noticed it lost its quorum: contact
   * counts as back only once an RPC answers after it, so the probe reads at once.
   */
  private watchConnection(connected: boolean, err?: TwillError): void {
    this.telemetry.etcdWatch(connected, err);
    if (connected) void this.probe?.probe();
  }

  private etcdRegistry(): EtcdRegistry {
    const security = this.opts.etcdAccess ? etcdClientSecurity(this.opts.etcdAccess) : {};
    return new EtcdRegistry({ endpoints: this.opts.etcdEndpoints, prefix: this.opts.etcdPrefix, ...security, onCall: (reached, err) => this.telemetry.etcdRpc(reached, err) });
  }

  /** Starts once; a second call gets the same promise. Resolves early (not running) when stop() comes first. */
  start(): Promise<void> {
    this.starting ??= this.run();
    return this.starting;
  }

  private async run(): Promise<void> {
    this.lifecycle.to('starting');
    const iface = await this.resolveInterface();
    await this.kernel.sysctl.enableIpForward();
    const config = await this.waitForConfig();
    if (!config) return;
    this.setup = this.settle(iface, config);
    this.leases = this.createLeaseManager(this.setup, await readPreviousSubnet(this.opts.subnetFile));
    const lease = await this.leases.acquire().catch((err: unknown) => {
      if (this.lifecycle.stopRequested) return null; // stop() ended the attempts
      throw err;
    });
    if (!lease || this.lifecycle.stopRequested) return;
    this.lease = lease;
    this.rules = new TrafficRules({ kernel: this.kernel, logger: this.rootLog, network: formatCidr(config.network), ipMasq: this.opts.ipMasq, forwardRules: this.opts.forwardRules });
    await this.rules.start(formatCidr(this.lease.subnet));
    await this.startBackend(this.lease);
    if (this.lifecycle.stopRequested) return; // no lease stream on a registry that stop() closes
    this.stream = new LeaseStream({ registry: this.registry, logger: this.rootLog, onEvents: (events, unreadable, meta) => this.onLeaseEvents(events, unreadable, meta), quietOutages: true, ...this.streamHooks() });
    await this.stream.start();
    // The backend takes its first call as the full peer set; with no peers none was sent.
    if (!this.peersSent) this.enqueue(() => this.backend!.applyPeerChanges([]));
    if (this.lifecycle.stopRequested) return;
    this.probe = new EtcdProbe({ registry: this.registry, logger: this.rootLog, running: config, onContact: (ok, err) => this.telemetry.etcdRpc(ok, err), onChanged: (c) => this.telemetry.configChanged(c) });
    this.probe.start();
    this.lifecycle.to('running');
    this.log.info({ subnet: formatCidr(this.lease.subnet), backend: config.backend.type, iface: iface.name, publicIP: iface.address }, 'agent running');
  }

  private settle(iface: ExternalInterface, config: NetworkConfig): Setup {
    const factory = backendFactory(config.backend.type, this.backends);
    const flags = this.opts.backendFlags?.[factory.type] ?? parseBackendFlags({}, { [factory.type]: factory })[factory.type];
    return { iface, config, factory, options: factory.parseOptions(config.backend.raw), flags };
  }

  async stop(): Promise<void> {
    if (this.lifecycle.stopRequested) return;
    this.lifecycle.to(this.lifecycle.state === 'created' ? 'stopped' : 'stopping');
    this.configRetry.cancel();
    await this.probe?.stop();
    this.leases?.stop();
    await this.stream?.stop();
    const dropped = this.feed.close();
    if (dropped > 0) this.log.info({ dropped }, 'stopping: peer changes not yet applied are left to the next start, which reconciles');
    await this.starting?.catch(() => undefined); // start() gives up at its next step
    await this.backendQueue;
    await this.backend?.stop();
    await this.rules?.stop();
    this.registry.close();
    if (this.lifecycle.state === 'stopping') this.lifecycle.to('stopped');
  }

  /** The traffic rules' state (repairs count, last error); null before the config is known. */
  trafficRulesStatus(): TrafficRulesStatus | null {
    return this.rules?.status() ?? null;
  }

  /** The whole picture, for /v1/status, /readyz and the metrics. */
  /** `twill trace`: the way to `dst` from this node, from the agent's state and the kernel's. */
  trace(dst: string, from?: string): Promise<PathTrace> {
    return traceFromNode({ kernel: this.kernel, status: this.status(), subnetFile: this.opts.subnetFile }, dst, from);
  }

  status(): AgentStatus {
    const revision = this.stream?.watchRevision() ?? '0';
    const parts = { state: this.lifecycle.state, iface: this.iface, config: this.setup?.config ?? null, backend: this.backend?.status() ?? null };
    return this.telemetry.status({ ...parts, watchRevision: revision === '0' ? null : revision });
  }

  /** /healthz: the agent's loops run until it is told to stop. */
  live(): boolean {
    return !this.lifecycle.stopRequested && this.fatal === null;
  }

  /**
   * A permanent etcd error after start (auth revoked, permission removed): the lease store has
   * stopped retrying. The data path keeps running on what it has; /healthz turns 503 so a
   * supervisor restarts the agent, whose start then names the error and exits.
   */
  private onFatal(err: unknown): void {
    if (this.fatal !== null) return;
    this.fatal = err;
    this.log.error({ err, code: errorCode(err) }, 'etcd refuses the agent for good; /healthz is failing so that the agent is restarted (routes stay)');
  }

  private streamHooks(): Pick<LeaseStreamOptions, 'onConnection' | 'onWatchEvent' | 'onFatal'> {
    return { onConnection: (c, err) => this.watchConnection(c, err), onWatchEvent: (t) => this.telemetry.watchEvent(t), onFatal: (err) => this.onFatal(err) };
  }

  private async resolveInterface(): Promise<ExternalInterface> {
    const link = await this.kernel.links.resolveExternal(this.opts.iface ?? undefined);
    const iface = { ...link, address: this.opts.publicIp ?? link.address };
    this.log.info({ iface: iface.name, publicIP: iface.address, mtu: iface.mtu }, 'using interface');
    this.iface = iface;
    return iface;
  }

  /**
   * Missing or invalid config, etcd down: one clear line per kind of problem (its code), and
   * retry; routes are left alone. A problem retrying cannot fix (etcd auth) ends start().
   * With --net-config-file, the config is first created from the file when etcd has none.
   */
  private async waitForConfig(): Promise<NetworkConfig | null> {
    let logged: ErrorCode | null = null;
    let seed = this.opts.netConfig ?? null;
    while (!this.lifecycle.stopRequested) {
      let problem: unknown;
      try {
        if (seed) await seedNetworkConfig(this.registry, seed, this.log);
        seed = null;
        const text = await this.registry.getConfig();
        if (text !== null) return validateNetworkConfig(text, this.backends);
        problem = new TwillError('TWILL_ERR_CONFIG_MISSING', `no network config at ${this.opts.etcdPrefix}/config; waiting for it`);
      } catch (err) {
        problem = err;
      }
      logged = this.report(logged, problem);
      if (!isTransient(problem)) throw problem;
      if (!this.lifecycle.stopRequested) await this.configRetry.wait(); // stop() cancels a pending wait only
    }
    return null;
  }

  /** Logs a problem unless its code is the one logged last; returns the code. */
  private report(last: ErrorCode | null, err: unknown): ErrorCode {
    const code = errorCode(err);
    if (code !== last) this.log.error({ code }, err instanceof Error ? err.message : String(err));
    return code;
  }

  private createLeaseManager(setup: Setup, preferred: Lease['subnet'] | null): LeaseManager {
    return new LeaseManager({
      registry: this.registry,
      logger: this.rootLog,
      config: setup.config,
      attrs: setup.factory.leaseAttrs(setup.iface.address, setup.options),
      ttlSeconds: this.opts.subnetLeaseTtlSeconds,
      quietOutages: true,
      preferred,
      onLease: (lease) => this.onLeaseAcquired(lease),
      onLost: () => this.telemetry.leaseLost(),
      onRenewed: (lease, ttl) => this.telemetry.leaseRenewed(lease, ttl),
      onFatal: (err) => this.onFatal(err),
    });
  }

  private async startBackend(lease: Lease): Promise<void> {
    const { iface, config, factory, options, flags } = this.setup!;
    this.backend = factory.create({ logger: this.rootLog, network: config, ownLease: lease, iface, kernel: this.kernel, options, flags, observer: this.telemetry.observer });
    this.telemetry.backendStarting();
    await this.backend.start();
    const mtu = factory.mtu(iface.mtu, options);
    await writeFileAtomic(this.opts.subnetFile, formatSubnetEnv({ network: config.network, subnet: lease.subnet, mtu, ipMasq: this.opts.ipMasq }));
    this.log.info({ path: this.opts.subnetFile, subnet: formatCidr(lease.subnet), mtu }, 'subnet file written');
    this.telemetry.subnetFileWritten();
    if (this.opts.cniConfFile) await this.writeCniConf(lease, mtu, this.opts.cniConfFile);
  }

  /** The node's conflist, for the runtime's bridge, host-local and portmap; rewritten only when it changes. */
  private async writeCniConf(lease: Lease, mtu: number, path: string): Promise<void> {
    const name = this.opts.cniNetworkName ?? DEFAULT_CNI_NETWORK_NAME;
    const text = renderConflist({ name, network: this.setup!.config.network, subnet: lease.subnet, mtu, ipMasq: this.opts.ipMasq });
    if (await writeConflist(path, text)) this.log.info({ path, name, subnet: formatCidr(lease.subnet), mtu }, 'CNI config written');
  }

  /** A lease re-acquired after a loss: same subnet → nothing to redo; a new one → restart the backend. */
  private onLeaseAcquired(lease: Lease): void {
    this.telemetry.leaseAcquired(lease, this.opts.subnetLeaseTtlSeconds);
    this.gate ??= new LeaseGate({ network: this.setup!.config.network, own: lease.subnet, etcdPrefix: this.opts.etcdPrefix });
    const previous = this.lease;
    if (!previous || !this.backend) return; // the first acquisition; start() carries on from here
    this.lease = lease;
    if (sameNet(previous.subnet, lease.subnet)) return;
    const gate = this.gate;
    this.reportRejections(gate.setOwn(lease.subnet).rejected); // its events: the new backend gets the whole set below
    this.enqueue(async () => {
      await this.backend?.stop();
      await this.rules?.setSubnet(formatCidr(lease.subnet));
      await this.startBackend(lease);
      await this.backend!.applyPeerChanges(gate.acceptedLeases().map((l) => ({ type: 'added', lease: l })));
    });
  }

  private onLeaseEvents(events: readonly LeaseEvent[], unreadable: readonly UnreadableLease[], meta: LeaseBatchMeta): void {
    const own = this.lease;
    for (const e of events) {
      if (!own || !sameNet(e.lease.subnet, own.subnet)) continue;
      // Our key deleted, or overwritten by another node: the lease is no longer ours.
      if (e.type === 'removed') this.leases?.handleLost('lease key deleted from etcd');
      else if (e.lease.attrs.publicIP !== own.attrs.publicIP) this.leases?.handleLost(`lease taken by ${e.lease.attrs.publicIP}`);
    }
    if (!this.gate) return; // never: the stream starts after the first lease
    // The backend sees only leases that pass (never our own, never one covering an address of ours).
    const { events: peerEvents, rejected } = this.gate.apply(events, unreadable, meta);
    this.reportRejections(rejected);
    if (peerEvents.length === 0) return;
    this.peersSent = true;
    this.feed.push(peerEvents);
  }

  /** A line per key newly rejected (once per key and reason), counted, and the current list for the status. */
  private reportRejections(fresh: readonly Rejection[]): void {
    for (const r of fresh) this.log.warn({ key: r.key, reason: r.reason, detail: r.detail }, 'lease rejected');
    this.telemetry.leasesRejected(fresh, this.gate?.rejections() ?? []);
  }

  private enqueue(task: () => Promise<void>): void {
    this.backendQueue = this.backendQueue.then(task).then(() => this.telemetry.backendProgrammed()).catch((err: unknown) => this.log.error({ err }, 'backend update failed'));
  }
}
