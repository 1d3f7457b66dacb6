// Issue 15, section 3: the C packet functions (native/packet/) built with
// -fsanitize=address,undefined and fed 10^6 seeded random and truncated inputs by
// native/packet/fuzz_main.c. Any sanitizer report aborts the run; it must exit 0 and say nothing on stderr.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const PACKET_DIR = fileURLToPath(new URL('../../native/packet/', import.meta.url));
const INPUTS = 1_000_000;

/** The system C compiler (node-gyp needs one, so CI has it); null when there is none. */
function findCompiler(): string | null {
  for (const cc of ['cc', 'gcc']) if (spawnSync(cc, ['--version'], { stdio: 'ignore' }).status === 0) return cc;
  return null;
}

const cc = findCompiler();
const dir = mkdtempSync(path.join(tmpdir(), 'twill-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('C packet functions under AddressSanitizer and UBSan', () => {
  it.skipIf(cc === null)(`${cc === null ? '(skipped: no C compiler on PATH) ' : ''}build warning-free, then ${INPUTS.toLocaleString('en')} inputs through every function: no report`, () => {
    const sources = readdirSync(PACKET_DIR).filter((f) => f.endsWith('.c')).map((f) => path.join(PACKET_DIR, f));
    const exe = path.join(dir, 'fuzz');
    const flags = ['-std=gnu11', '-O1', '-g', '-Wall', '-Wextra', '-Werror', '-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer'];
    const build = spawnSync(cc!, [...flags, ...sources, '-o', exe], { encoding: 'utf8' });
    expect({ status: build.status, stderr: build.stderr }).toEqual({ status: 0, stderr: '' });

    const started = performance.now();
    const run = spawnSync(exe, ['15', String(INPUTS)], {
      encoding: 'utf8',
      env: { ...process.env, ASAN_OPTIONS: 'halt_on_error=1:detect_leaks=1', UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1' },
    });
    expect({ status: run.status, signal: run.signal, stderr: run.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    expect(run.stdout).toContain(`fuzz: ${INPUTS} inputs`);
    expect(Number(/(\d+) segments cut/.exec(run.stdout)?.[1]), run.stdout).toBeGreaterThan(10_000); // TSO was reached
    expect(performance.now() - started).toBeLessThan(120_000);
  }, 180_000);
});
