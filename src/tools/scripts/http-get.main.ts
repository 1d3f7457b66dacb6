/**
 *   node http-get.main.js URL... TIMEOUT_MS
 *
 * GETs every URL at once and prints the answers as one JSON array of HttpAnswer (http-get.ts),
 * nothing else. Started only by httpGetInNetns, inside a lab namespace.
 */
import { getAll, parseHttpGetArgs } from './http-get.js';

const args = parseHttpGetArgs(process.argv.slice(2));
if (args === null) {
  process.stderr.write('usage: http-get URL... TIMEOUT_MS\n');
  process.exitCode = 2;
} else {
  getAll(args.urls, args.timeoutMs).then(
    (answers) => process.stdout.write(JSON.stringify(answers)),
    (err: unknown) => {
      process.stderr.write(`http-get: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
