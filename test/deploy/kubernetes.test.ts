import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { CNI_PLUGINS, renderConflist } from '../../src/agent/cni-conflist.js';
import { validateNetworkConfig } from '../../src/agent/network-config.js';
import { parseCidr } from '../../src/lib/ipv4.js';

// Every manifest in deploy/kubernetes validated against the Kubernetes API's OpenAPI schemas,
// as compiled and bundled by the kubernetes-models package (offline, no cluster needed): types,
// enums, required fields, formats. Then the facts the DaemonSet has to get right for twill.
const DIR = fileURLToPath(new URL('../../deploy/kubernetes/', import.meta.url));

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}

/** Every manifest: deploy/kubernetes/ first, then the bundled etcd in etcd/. */
async function manifests(): Promise<{ file: string; doc: Manifest }[]> {
  const out: { file: string; doc: Manifest }[] = [];
  const files = async (sub: string) => (await readdir(join(DIR, sub))).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(sub, f));
  for (const file of [...(await files('.')), ...(await files('etcd'))]) {
    for (const d of parseAllDocuments(await readFile(join(DIR, file), 'utf8'))) {
      expect(d.errors, file).toEqual([]);
      if (d.contents !== null) out.push({ file, doc: d.toJS() as Manifest });
    }
  }
  return out;
}

/** The kubernetes-models class for apiVersion + kind, e.g. apps/v1 DaemonSet. */
async function validatorFor(doc: Manifest): Promise<(obj: unknown) => void> {
  const mod = (await import(`kubernetes-models/${doc.apiVersion}/${doc.kind}`)) as Record<string, new (o: unknown) => { validate(): void }>;
  const Model = mod[doc.kind];
  if (!Model) throw new Error(`kubernetes-models has no ${doc.apiVersion} ${doc.kind}`);
  return (obj) => new Model(obj).validate();
}

describe('deploy/kubernetes', () => {
  it('every manifest is valid against the Kubernetes API schemas', async () => {
    const all = await manifests();
    expect(all.map((m) => m.doc.kind).sort()).toEqual(['ConfigMap', 'ConfigMap', 'DaemonSet', 'Namespace', 'PodDisruptionBudget', 'Service', 'ServiceAccount', 'StatefulSet']);
    for (const { file, doc } of all) {
      const validate = await validatorFor(doc);
      expect(() => validate(doc), `${file}: ${doc.kind}`).not.toThrow();
      if (doc.kind !== 'Namespace') expect(doc.metadata.namespace, file).toBe('twill-system');
    }
  });

  it('the validator does reject a broken DaemonSet (wrong types, bad enum, missing selector)', async () => {
    const ds = (await manifests()).find((m) => m.doc.kind === 'DaemonSet')!.doc;
    const validate = await validatorFor(ds);
    const broken = (edit: (d: any) => void) => { // eslint-disable-line @typescript-eslint/no-explicit-any
      const copy = structuredClone(ds);
      edit(copy);
      return () => validate(copy);
    };
    expect(broken((d) => (d.spec.template.spec.hostNetwork = 'yes'))).toThrow(/hostNetwork must be boolean/);
    expect(broken((d) => (d.spec.template.spec.tolerations[0].operator = 'Sometimes'))).toThrow(/operator must be equal to one of the allowed values/);
    expect(broken((d) => delete d.spec.selector)).toThrow(/data\/spec must have required property selector/);
    expect(broken((d) => (d.spec.template.spec.containers[0].livenessProbe.httpGet.port = [8475]))).toThrow(/port/);
  });

  it('the DaemonSet: host network, NET_ADMIN and NET_RAW unprivileged, every node, probes, mounts, etcd TLS flags', async () => {
    const ds = (await manifests()).find((m) => m.doc.kind === 'DaemonSet')!.doc as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const pod = ds.spec.template.spec;
    expect(pod.hostNetwork).toBe(true);
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    const [agent] = pod.containers;
    expect(agent.securityContext).toEqual({ privileged: false, capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } });
    expect(agent.livenessProbe.httpGet.path).toBe('/healthz');
    expect(agent.readinessProbe.httpGet.path).toBe('/readyz');
    expect(agent.resources.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    for (const flag of ['--etcd-endpoints=', '--etcd-cafile=', '--etcd-certfile=', '--etcd-keyfile=']) {
      expect(agent.args.some((a: string) => a.startsWith(flag)), flag).toBe(true);
    }
    const hostPaths = Object.fromEntries(pod.volumes.filter((v: any) => v.hostPath).map((v: any) => [v.name, v.hostPath.path])); // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(Object.values(hostPaths)).toEqual(expect.arrayContaining(['/run/flannel', '/etc/cni/net.d', '/opt/cni/bin', '/dev/net/tun']));
    expect(pod.volumes.find((v: any) => v.secret)?.secret.secretName).toBe('twill-etcd-tls'); // eslint-disable-line @typescript-eslint/no-explicit-any
    // The network config is seeded from the ConfigMap's net-conf.json, mounted where the flag points.
    expect(agent.args).toContain('--net-config-file=/etc/twill/net-conf.json');
    expect(agent.volumeMounts).toContainEqual({ name: 'twill-config', mountPath: '/etc/twill/net-conf.json', subPath: 'net-conf.json', readOnly: true });
    expect(pod.volumes.find((v: any) => v.name === 'twill-config')?.configMap.name).toBe('twill-config'); // eslint-disable-line @typescript-eslint/no-explicit-any
    // The agent writes the node's conflist into the host's CNI config dir.
    expect(agent.args).toContain('--cni-conf-file=/etc/cni/net.d/10-twill.conflist');
    expect(agent.volumeMounts).toContainEqual({ name: 'cni-conf-dir', mountPath: '/etc/cni/net.d' });
  });

  it("the ConfigMap's net-conf.json passes twill's own config rules, and there is no conflist in it", async () => {
    const cm = (await manifests()).find((m) => m.doc.metadata.name === 'twill-config')!.doc as unknown as { data: Record<string, string> };
    expect(validateNetworkConfig(cm.data['net-conf.json']!).backend.type).toBe('host-gw');
    expect(Object.keys(cm.data).sort()).toEqual(['etcd-endpoints', 'net-conf.json']);
  });

  it('names no CNI plugin that the init container does not install from the image (no flannel plugin anywhere)', async () => {
    const all = await manifests();
    const ds = all.find((m) => m.doc.kind === 'DaemonSet')!.doc as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const script = ds.spec.template.spec.initContainers[0].command.join(' ') as string;
    const installed = /for p in ([\w -]+); do/.exec(script)![1]!.trim().split(/\s+/);
    // Every plugin the agent's conflist names, and loopback (runtimes call it for lo).
    const conflist = JSON.parse(renderConflist({ name: 'cbr0', network: parseCidr('10.244.0.0/16')!, subnet: parseCidr('10.244.1.0/24')!, mtu: 1500, ipMasq: true })) as { plugins: { type: string; ipam?: { type: string } }[] };
    const named = [...conflist.plugins.flatMap((p) => [p.type, ...(p.ipam ? [p.ipam.type] : [])]), 'loopback'];
    expect(named.filter((p) => !installed.includes(p))).toEqual([]);
    expect([...CNI_PLUGINS].filter((p) => !installed.includes(p))).toEqual([]);
    // The image has them: Debian's containernetworking-plugins puts them in /usr/lib/cni.
    const dockerfile = await readFile(fileURLToPath(new URL('../../Dockerfile', import.meta.url)), 'utf8');
    expect(dockerfile).toContain('containernetworking-plugins');
    expect(script).toContain('/usr/lib/cni/$p');
    for (const { file, doc } of all) expect(JSON.stringify(doc), file).not.toMatch(/"type\\?":\s*\\?"flannel/);
  });

  it('the bundled etcd: three members on labelled nodes, one per node, host network, TLS for clients and peers, a quorum kept through drains, and the agents pointed at it', async () => {
    const all = await manifests();
    const doc = (name: string, kind: string) => all.find((m) => m.doc.metadata.name === name && m.doc.kind === kind)!.doc as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    const sts = doc('twill-etcd', 'StatefulSet');
    const pod = sts.spec.template.spec;
    expect(sts.spec).toMatchObject({ replicas: 3, serviceName: 'twill-etcd', podManagementPolicy: 'Parallel' });
    expect(pod.hostNetwork).toBe(true);
    expect(pod.nodeSelector).toEqual({ 'twill.io/etcd': 'member' });
    expect(pod.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe('kubernetes.io/hostname');
    const args: string[] = pod.containers[0].args;
    for (const flag of ['--client-cert-auth', '--peer-client-cert-auth', '--name=$(NODE_NAME)', '--initial-cluster=$(INITIAL_CLUSTER)', '--initial-advertise-peer-urls=https://$(HOST_IP):2380']) expect(args).toContain(flag);
    expect(pod.volumes.find((v: any) => v.secret).secret.secretName).toBe('twill-etcd-server'); // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(doc('twill-etcd', 'Service').spec.clusterIP).toBe('None');
    expect(doc('twill-etcd', 'PodDisruptionBudget').spec.maxUnavailable).toBe(1);
    // The agents' endpoints are the members' client URLs.
    const cluster: string = doc('twill-etcd-members', 'ConfigMap').data['initial-cluster'];
    const clientUrls = cluster.split(',').map((m) => m.split('=')[1]!.replace(':2380', ':2379'));
    expect(doc('twill-config', 'ConfigMap').data['etcd-endpoints'].split(',')).toEqual(clientUrls);
    expect(clientUrls).toHaveLength(3);
  });
});
