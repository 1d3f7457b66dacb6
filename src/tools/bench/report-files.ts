import { access, constants, mkdir, writeFile } from 'node:fs/promises';
import { TwillError } from '../../errors.js';
import { join } from 'node:path';
import { summarize, type BenchResults } from './results.js';
import { renderSvg } from './svg.js';
import { renderReport } from './table.js';

export const REPORT_FILES = { results: 'results.json', report: 'report.md', chart: 'report.svg' } as const;

/**
 * Writes results.json (every raw sample, plus the summary derived from them), report.md (the
 * tables) and report.svg (the chart) into `dir`; returns their paths.
 */
export async function writeReportFiles(dir: string, results: BenchResults): Promise<string[]> {
  const summary = summarize(results);
  await mkdir(dir, { recursive: true });
  const files: [string, string][] = [
    [REPORT_FILES.results, `${JSON.stringify({ ...results, summary }, null, 2)}\n`],
    [REPORT_FILES.report, renderReport(results, summary)],
    [REPORT_FILES.chart, renderSvg(results, summary)],
  ];
  for (const [name, text] of files) await writeFile(join(dir, name), text);
  return files.map(([name]) => join(dir, name));
}

/** `--out DIR`: made if missing, and checked writable before any lab is built. */
export async function ensureWritableDir(out: string): Promise<void> {
  await mkdir(out, { recursive: true });
  await access(out, constants.W_OK).catch((e: unknown) => {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `--out ${out} is not writable`, { cause: e });
  });
}
