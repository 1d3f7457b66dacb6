import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPORT_FILES } from './report-files.js';
import { summarizeScale, type ScaleResults } from './scale-results.js';
import { renderScaleSvg } from './scale-svg.js';
import { renderScaleReport } from './scale-table.js';

/**
 * Writes the bench's three files for a scale run into `dir`: results.json (every raw figure,
 * plus the summary derived from them), report.md (the tables and the method) and report.svg;
 * returns their paths.
 */
export async function writeScaleReportFiles(dir: string, results: ScaleResults): Promise<string[]> {
  const summary = summarizeScale(results);
  await mkdir(dir, { recursive: true });
  const files: [string, string][] = [
    [REPORT_FILES.results, `${JSON.stringify({ ...results, summary }, null, 2)}\n`],
    [REPORT_FILES.report, renderScaleReport(results, summary)],
    [REPORT_FILES.chart, renderScaleSvg(results, summary)],
  ];
  for (const [name, text] of files) await writeFile(join(dir, name), text);
  return files.map(([name]) => join(dir, name));
}
