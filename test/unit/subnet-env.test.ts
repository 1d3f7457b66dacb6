import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { formatSubnetEnv, readPreviousSubnet, writeFileAtomic } from '../../src/agent/subnet-env.js';
import { parseEnvFile } from '../../src/lib/env-file.js';
import { formatCidr, parseCidr } from '../../src/lib/ipv4.js';

describe('subnet.env', () => {
  const env = { network: parseCidr('10.244.0.0/16')!, subnet: parseCidr('10.244.1.0/24')!, mtu: 1472, ipMasq: true };

  it('matches the contract byte for byte', () => {
    expect(formatSubnetEnv(env)).toBe('FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n');
  });

  it('is written atomically with mode 0644 and read back as the previous subnet', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'twill-env-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'run', 'flannel', 'subnet.env');
    await writeFileAtomic(path, formatSubnetEnv(env));
    await writeFileAtomic(path, formatSubnetEnv({ ...env, ipMasq: false }));
    expect(await readFile(path, 'utf8')).toContain('FLANNEL_IPMASQ=false');
    expect((await stat(path)).mode & 0o777).toBe(0o644);
    expect(await readdir(join(dir, 'run', 'flannel'))).toEqual(['subnet.env']); // no temp files left
    expect(formatCidr((await readPreviousSubnet(path))!)).toBe('10.244.1.0/24');
    expect(await readPreviousSubnet(join(dir, 'missing.env'))).toBeNull();
  });

  it('parses KEY=VALUE lines and skips the rest', () => {
    const parsed = parseEnvFile('# comment\nFLANNEL_MTU=1450\n\nbad line\nFLANNEL_SUBNET= 10.1.2.1/24 \n');
    expect([...parsed]).toEqual([
      ['FLANNEL_MTU', '1450'],
      ['FLANNEL_SUBNET', '10.1.2.1/24'],
    ]);
  });
});
