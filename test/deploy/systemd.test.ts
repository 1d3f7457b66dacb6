import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseEnvFile } from '../../src/lib/env-file.js';

// deploy/systemd: the unit checked by systemd's own parser (systemd-analyze verify, which runs
// without systemd as PID 1), in a throwaway root holding the system's units and a stand-in
// /usr/local/bin/twill, so nothing is installed on this machine.
const UNIT = new URL('../../deploy/systemd/twill.service', import.meta.url);
const ENV = new URL('../../deploy/systemd/twill.env', import.meta.url);
const SYSTEM_UNITS = ['/usr/lib/systemd/system', '/lib/systemd/system'].find((d) => existsSync(join(d, 'sysinit.target')));
const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));
const run = promisify(execFile);
const dirs: string[] = [];

afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function verify(unitText: string): Promise<{ code: number; stderr: string }> {
  const root = await mkdtemp(join(tmpdir(), 'twill-systemd-'));
  dirs.push(root);
  await mkdir(join(root, 'usr/local/bin'), { recursive: true });
  await mkdir(join(root, 'etc/systemd/system'), { recursive: true });
  await writeFile(join(root, 'usr/local/bin/twill'), '#!/bin/sh\n');
  await chmod(join(root, 'usr/local/bin/twill'), 0o755);
  await cp(SYSTEM_UNITS!, join(root, 'usr/lib/systemd/system'), { recursive: true });
  await writeFile(join(root, 'etc/systemd/system/twill.service'), unitText);
  try {
    const { stderr } = await run(analyze!, ['verify', `--root=${root}`, 'twill.service']);
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code?: number; stderr?: string };
    return { code: e.code ?? 1, stderr: e.stderr ?? '' };
  }
}

function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
}

describe('deploy/systemd/twill.service', () => {
  it('restarts on failure, reads its flags from an environment file, starts after network-online', async () => {
    const d = directives(await readFile(UNIT, 'utf8'));
    expect(d.get('Restart')).toEqual(['on-failure']);
    expect(d.get('EnvironmentFile')).toEqual(['/etc/twill/twill.env']);
    expect(d.get('ExecStart')).toEqual(['/usr/local/bin/twill agent']);
    expect(d.get('After')).toContain('network-online.target');
    expect(d.get('Wants')).toContain('network-online.target');
  });

  it('the example environment file sets only TWILL_* variables the agent knows', async () => {
    const vars = parseEnvFile(await readFile(ENV, 'utf8'));
    expect(vars.get('TWILL_ETCD_ENDPOINTS')).toMatch(/^https:\/\//);
    const help = (await run(process.execPath, [new URL('../../dist/cli/main.js', import.meta.url).pathname, 'agent', '--help'])).stdout;
    for (const name of vars.keys()) {
      const flag = `--${name.replace(/^TWILL_/, '').toLowerCase().replace(/_/g, '-')}`;
      expect(help, name).toContain(flag);
    }
  });

  it.skipIf(!analyze || !SYSTEM_UNITS)('passes systemd-analyze verify with no warnings, which does catch a bad line', async () => {
    const good = await verify(await readFile(UNIT, 'utf8'));
    expect(good).toEqual({ code: 0, stderr: '' });
    const bad = await verify((await readFile(UNIT, 'utf8')).replace('Restart=on-failure', 'Restart=sometimes'));
    expect(bad.stderr).toMatch(/Failed to parse service restart specifier/);
  });
});
