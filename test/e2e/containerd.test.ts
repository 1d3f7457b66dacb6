// Issue 16, part 4: a real container runtime wires a container from the conflist the agent
// wrote, the path a kubelet takes short of the kubelet itself (CRI → containerd → CNI).
// Debian's containerd runs in h1's network namespace with its own root, state and socket; `ctr
// run --cni` (which calls the CNI plugins itself) runs there too, in a private mount namespace
// where the lab's conflist directory, the plugins and a host-local store are bound at the
// paths it looks in. The image is made here from Debian's static busybox (no registry).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, isRoot, labNamespaces, readLabState, run, twill, type LabStateFile } from '../support/lab.js';
import { eventually } from '../support/logger.js';
import { busyboxImage } from '../support/oci-image.js';

const LAB = 't16c';
const LAB_DIR = `/tmp/twill-lab/${LAB}`;
const HOST_NS = `/var/run/netns/twl-${LAB}-h1`;
const WORK = `${LAB_DIR}/h1/containerd`;
const SOCKET = `${WORK}/containerd.sock`;
/** ctr's namespace, and so the name of the cgroup runc makes under each controller. */
const CTR_NS = `twl-${LAB}`;
const IMAGE = 'docker.io/library/twill-busybox:test';
/** host-local's store of h1, which the lab's own pods use too: one store per node, as on a real one. */
const STORE = `${LAB_DIR}/h1/cni`;

/** A command in h1's network namespace (nsenter keeps the node's /sys, and so its cgroups, in view). */
const inHost = (cmd: string, args: readonly string[]) => run('nsenter', [`--net=${HOST_NS}`, cmd, ...args]);
const ctr = (...args: string[]) => inHost('ctr', ['-a', SOCKET, '-n', CTR_NS, ...args]);

/** What the runtime sees: the lab's conflist dir, the plugins and a store at the default paths, in a mount namespace of its own. */
function runtimeScript(command: string): string {
  const ovl = `${WORK}/mnt`;
  return [
    'set -e',
    `mount -t tmpfs twill-ctr ${ovl}`,
    `mkdir -p ${ovl}/etc-up ${ovl}/etc-work ${ovl}/lib-up ${ovl}/lib-work ${ovl}/opt`,
    // /etc/cni and /var/lib/cni do not exist on the machine: overlays make room without touching it.
    `mount -t overlay twill-etc -o lowerdir=/etc,upperdir=${ovl}/etc-up,workdir=${ovl}/etc-work /etc`,
    `mkdir -p /etc/cni/net.d && mount --bind ${LAB_DIR}/h1/net.d /etc/cni/net.d`,
    `mount --bind ${ovl}/opt /opt && mkdir -p /opt/cni/bin && mount --bind /usr/lib/cni /opt/cni/bin`,
    `mount -t overlay twill-lib -o lowerdir=/var/lib,upperdir=${ovl}/lib-up,workdir=${ovl}/lib-work /var/lib`,
    `mkdir -p /var/lib/cni/networks && mount --bind ${STORE} /var/lib/cni/networks`,
    command,
  ].join('\n');
}

describe.skipIf(!isRoot())('a container runtime wires a container from the agent-written conflist', () => {
  let state: LabStateFile;
  let containerd: ChildProcess | null = null;

  beforeAll(async () => {
    assertBuilt();
    await twill(['lab', 'down', '--name', LAB]);
    const up = await twill(['lab', 'up', '--name', LAB, '--hosts', '2', '--backend', 'host-gw']);
    expect(up.code, up.stderr).toBe(0);
    state = await readLabState(LAB_DIR);
    await mkdir(`${WORK}/mnt`, { recursive: true });
    const image = await busyboxImage(`${WORK}/image`, IMAGE);
    const config = ['version = 2', `root = "${WORK}/root"`, `state = "${WORK}/state"`, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]', '[grpc]', `  address = "${SOCKET}"`, ''].join('\n');
    await writeFile(`${WORK}/config.toml`, config);
    // runc needs a cgroup hierarchy; where the machine mounts none, one of containerd's own (cgroup2, in a mount namespace of its own).
    const daemon = `grep -q ' cgroup' /proc/self/mountinfo || mount -t cgroup2 twill-cgroup /sys/fs/cgroup; exec containerd --config ${WORK}/config.toml`;
    containerd = spawn('nsenter', [`--net=${HOST_NS}`, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', daemon], { stdio: 'ignore' });
    await eventually(() => existsSync(SOCKET), 10_000, "containerd's socket");
    const imported = await ctr('images', 'import', '--snapshotter', 'native', image);
    expect(imported.code, imported.stderr).toBe(0);
  }, 60_000);

  afterAll(async () => {
    if (containerd) {
      const exited = new Promise((r) => containerd!.once('exit', r));
      containerd.kill('SIGTERM');
      await exited;
    }
    await twill(['lab', 'down', '--name', LAB]);
    expect(await labNamespaces(LAB)).toEqual([]);
    for (const controller of existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup') : []) {
      const dir = join('/sys/fs/cgroup', controller, CTR_NS); // runc's, emptied when the container went
      if (existsSync(dir)) rmdirSync(dir);
    }
  });

  it("gets an address in h1's subnet, reaches h2's pod, and gives the address back when it is deleted", async () => {
    const h1 = state.hosts.find((h) => h.id === 'h1')!;
    const target = state.pods.find((p) => p.host === 'h2')!.ip!;
    const inside = `ip -4 -o addr show eth0; ping -c 2 -W 2 ${target} && echo REACHED; sleep 3`;
    const command = `ctr -a ${SOCKET} -n ${CTR_NS} run --snapshotter native --cni --rm ${IMAGE} c1 sh -c '${inside}'`;
    const script = `${WORK}/run.sh`;
    await writeFile(script, runtimeScript(command));
    const started = inHost('unshare', ['-m', '--propagation', 'private', 'sh', script]);

    // While it runs, host-local's store holds its address.
    const prefix = h1.subnet!.split('.').slice(0, 3).join('.');
    const pods = new Set(state.pods.filter((p) => p.host === 'h1').map((p) => p.ip));
    const networks = `${STORE}/cbr0`;
    const held = () => (existsSync(networks) ? readdirSync(networks).filter((f) => f.startsWith(`${prefix}.`) && !pods.has(f)) : []);
    await eventually(() => held().length === 1, 20_000, "the container's address in host-local's store");
    const [address] = held();

    const res = await started;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`inet ${address}/24`); // from the agent's conflist: h1's subnet
    expect(res.stdout).toContain('REACHED');
    expect(held()).toEqual([]); // ctr ran CNI DEL as the container went: the address is free again
    expect((await ctr('containers', 'ls', '-q')).stdout.trim()).toBe('');
  }, 60_000);
});
