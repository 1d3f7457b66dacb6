// Issue 12, point 2: leaves on the ground floor, arrows pointing down. Every relative import in
// src/ (static, `export … from`, dynamic `import()`, type-only too) must go from a layer to one
// the table below allows; a layer may always import itself.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const LAYERS = ['errors', 'version', 'log', 'lib', 'status', 'trace', 'kernel', 'subnet', 'rules', 'backend', 'metrics', 'api', 'agent', 'cli', 'tools'] as const;
type Layer = (typeof LAYERS)[number];

const AGENT_MAY: readonly Layer[] = ['errors', 'version', 'log', 'lib', 'status', 'trace', 'kernel', 'subnet', 'rules', 'backend', 'metrics', 'api'];

/** What each layer may import besides itself. */
const MAY_IMPORT: Readonly<Record<Layer, readonly Layer[]>> = {
  errors: [],
  version: [],
  log: ['errors'],
  lib: ['errors'],
  status: ['lib', 'errors'],
  trace: ['lib', 'errors', 'status'],
  kernel: ['lib', 'errors', 'log'],
  subnet: ['lib', 'errors', 'log'],
  rules: ['lib', 'errors', 'log', 'kernel', 'status'],
  backend: ['lib', 'errors', 'log', 'kernel', 'subnet', 'status'],
  metrics: ['lib', 'errors', 'log', 'status', 'backend'],
  api: ['lib', 'errors', 'log', 'status', 'trace'],
  agent: AGENT_MAY,
  cli: [...AGENT_MAY, 'agent'], // and src/cli/main.ts may import tools: it registers `twill lab` and `twill bench`
  tools: LAYERS,
};

const LEAF_FILES: Readonly<Record<string, Layer>> = { 'errors.ts': 'errors', 'log.ts': 'log', 'version.ts': 'version' };

interface SourceFile {
  /** Relative to src/, with forward slashes: 'backend/udp/backend.ts'. */
  readonly path: string;
  readonly text: string;
}

interface Violation {
  readonly file: string;
  readonly specifier: string;
  readonly why: string;
}

/** The layer of a path under src/; null for a file in no layer (a new top-level file or folder). */
function layerOf(p: string): Layer | null {
  const [first, ...rest] = p.split('/');
  if (rest.length === 0) return LEAF_FILES[first ?? ''] ?? null;
  return LAYERS.includes(first as Layer) && !(first! in LEAF_FILES) ? (first as Layer) : null;
}

/** Folders of backend/ that are no backend: code several backends share (the L2 verdict). */
const SHARED_BACKEND_FOLDERS: readonly string[] = ['shared'];

/** 'udp' for backend/udp/…, null for a file directly in backend/ (the interface and the table) or in a shared folder. */
function backendFolder(p: string): string | null {
  const parts = p.split('/');
  return parts.length > 2 && !SHARED_BACKEND_FOLDERS.includes(parts[1]!) ? parts[1]! : null;
}

/** The relative imports of a file, as written, by TypeScript's own scanner (comments and strings are not imports). */
function relativeImports(text: string): string[] {
  return ts
    .preProcessFile(text, true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((s) => s.startsWith('./') || s.startsWith('../'));
}

/** Every import that breaks the layering, in file order. */
function checkLayering(files: readonly SourceFile[]): Violation[] {
  const out: Violation[] = [];
  for (const file of files) {
    const from = layerOf(file.path);
    if (from === null) {
      out.push({ file: file.path, specifier: '-', why: 'the file is in no layer: add its folder to the table in test/unit/layering.test.ts' });
      continue;
    }
    for (const specifier of relativeImports(file.text)) {
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file.path), specifier)).replace(/\.js$/, '.ts');
      if (target.startsWith('../')) continue; // outside src/ (none today): not a layer
      const to = layerOf(target);
      const add = (why: string) => out.push({ file: file.path, specifier, why });
      if (to === null) add(`${target} is in no layer: add its folder to the table in test/unit/layering.test.ts`);
      else if (from !== to) {
        const allowed = MAY_IMPORT[from].includes(to) || (file.path === 'cli/main.ts' && to === 'tools');
        if (!allowed) add(`${from} → ${to}`);
      } else if (from === 'backend') {
        const [a, b] = [backendFolder(file.path), backendFolder(target)];
        if (a !== null && b !== null && a !== b) add(`backend/${a} → backend/${b}: one backend's folder never imports another's`);
        if (a === null && b !== null && file.path !== 'backend/index.ts') add(`backend → backend/${b}: only the table (backend/index.ts) imports backend folders`);
      }
    }
  }
  return out;
}

const formatViolations = (vs: readonly Violation[]): string =>
  vs.map((v) => `  src/${v.file} → ${v.specifier}  (${v.why})`).join('\n');

function readSources(root: string): SourceFile[] {
  return (readdirSync(root, { recursive: true, encoding: 'utf8' }) as string[])
    .map((p) => p.split(path.sep).join('/'))
    .filter((p) => p.endsWith('.ts'))
    .sort()
    .map((p) => ({ path: p, text: readFileSync(path.join(root, p), 'utf8') }));
}

describe('layering', () => {
  it('every import in src/ points down the table (or stays in its layer)', () => {
    const files = readSources(fileURLToPath(new URL('../../src/', import.meta.url)));
    expect(files.length).toBeGreaterThan(50);
    const violations = checkLayering(files);
    expect(violations, `${violations.length} import(s) break the layering:\n${formatViolations(violations)}\n`).toEqual([]);
  });

  it('the checker reports bad imports of every kind and lets good ones pass', () => {
    const files: SourceFile[] = [
      { path: 'errors.ts', text: "export class TwillError extends Error {}\n" },
      { path: 'lib/ipv4.ts', text: "import { TwillError } from '../errors.js';\nimport { log } from '../log.js';\n" },
      { path: 'status/types.ts', text: "import type { Backend } from '../backend/backend.js';\n// import { x } from '../cli/main.js';\nconst s = \"import('../agent/agent.js')\";\n" },
      { path: 'api/app.ts', text: "export { VERSION } from '../version.js';\nexport * from '../status/types.js';\nconst m = await import('../metrics/metrics.js');\n" },
      { path: 'backend/index.ts', text: "import { udp } from './udp/factory.js';\nimport { hostGw } from './host-gw/factory.js';\n" },
      { path: 'backend/backend.ts', text: "import type { UdpStatus } from './udp/status.js';\nimport { subnet } from '../subnet/config.js';\n" },
      { path: 'backend/udp/backend.ts', text: "import { plan } from '../host-gw/route-plan.js';\nimport type { Backend } from '../backend.js';\nimport { peers } from './peers.js';\n" },
      { path: 'backend/vxlan/backend.ts', text: "import { L2Cache } from '../shared/l2-cache.js';\n" },
      { path: 'backend/shared/l2-cache.ts', text: "import { x } from '../udp/peers.js';\n" },
      { path: 'agent/agent.ts', text: "import { table } from '../backend/index.js';\nimport { serve } from '../api/app.js';\n" },
      { path: 'cli/main.ts', text: "import { labCommand } from '../tools/lab/command.js';\nimport { run } from '../agent/agent.js';\n" },
      { path: 'cli/agent-cmd.ts', text: "import { exec } from '../tools/kernel/process.js';\n" },
      { path: 'tools/lab/up.ts', text: "import { main } from '../../cli/main.js';\n" },
      { path: 'index.ts', text: "export const a = 1;\n" },
      { path: 'api/routes.ts', text: "import { thing } from '../plugins/thing.js';\n" },
    ];
    expect(checkLayering(files)).toEqual([
      { file: 'lib/ipv4.ts', specifier: '../log.js', why: 'lib → log' },
      { file: 'status/types.ts', specifier: '../backend/backend.js', why: 'status → backend' },
      { file: 'api/app.ts', specifier: '../version.js', why: 'api → version' },
      { file: 'api/app.ts', specifier: '../metrics/metrics.js', why: 'api → metrics' },
      { file: 'backend/backend.ts', specifier: './udp/status.js', why: 'backend → backend/udp: only the table (backend/index.ts) imports backend folders' },
      { file: 'backend/udp/backend.ts', specifier: '../host-gw/route-plan.js', why: "backend/udp → backend/host-gw: one backend's folder never imports another's" },
      { file: 'backend/shared/l2-cache.ts', specifier: '../udp/peers.js', why: 'backend → backend/udp: only the table (backend/index.ts) imports backend folders' },
      { file: 'cli/agent-cmd.ts', specifier: '../tools/kernel/process.js', why: 'cli → tools' },
      { file: 'index.ts', specifier: '-', why: 'the file is in no layer: add its folder to the table in test/unit/layering.test.ts' },
      { file: 'api/routes.ts', specifier: '../plugins/thing.js', why: 'plugins/thing.ts is in no layer: add its folder to the table in test/unit/layering.test.ts' },
    ]);
    expect(formatViolations(checkLayering(files))).toContain('  src/status/types.ts → ../backend/backend.js  (status → backend)');
  });
});
