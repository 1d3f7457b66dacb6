/**
 * A minimal OCI image made here, with no registry: Debian's static busybox as /bin/busybox and
 * the applets a test needs as links, one layer, written as an OCI image layout tarball that
 * `ctr images import` takes (the name in io.containerd.image.name).
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './lab.js';

const APPLETS = ['sh', 'ip', 'ping', 'sleep', 'cat'];

async function blob(dir: string, file: string): Promise<{ digest: string; size: number }> {
  const hex = createHash('sha256').update(await readFile(file)).digest('hex');
  await copyFile(file, join(dir, 'layout/blobs/sha256', hex));
  return { digest: `sha256:${hex}`, size: (await stat(file)).size };
}

async function tar(args: readonly string[]): Promise<void> {
  const res = await run('tar', args);
  if (res.code !== 0) throw new Error(`tar ${args.join(' ')}: ${res.stderr}`);
}

/** Builds the image under `dir`; returns the tarball's path. */
export async function busyboxImage(dir: string, name: string): Promise<string> {
  await mkdir(join(dir, 'rootfs/bin'), { recursive: true });
  await mkdir(join(dir, 'layout/blobs/sha256'), { recursive: true });
  await copyFile('/usr/bin/busybox', join(dir, 'rootfs/bin/busybox'));
  for (const a of APPLETS) await symlink('busybox', join(dir, 'rootfs/bin', a));
  await tar(['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-C', join(dir, 'rootfs'), '-cf', join(dir, 'layer.tar'), 'bin']);
  const layer = await blob(dir, join(dir, 'layer.tar'));
  const config = { architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'], Env: ['PATH=/bin'] }, rootfs: { type: 'layers', diff_ids: [layer.digest] } };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  const cfg = await blob(dir, join(dir, 'config.json'));
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...cfg },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
  };
  await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
  const man = await blob(dir, join(dir, 'manifest.json'));
  const index = { schemaVersion: 2, manifests: [{ mediaType: manifest.mediaType, ...man, annotations: { 'io.containerd.image.name': name } }] };
  await writeFile(join(dir, 'layout/index.json'), JSON.stringify(index));
  await writeFile(join(dir, 'layout/oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const out = join(dir, 'image.tar');
  await tar(['-C', join(dir, 'layout'), '-cf', out, 'oci-layout', 'index.json', 'blobs']);
  return out;
}
