/**
 *   node scale-driver.main.js CONFIG_JSON
 *
 * The driver of `twill bench scale` (scale-driver.ts): reads one request per line on stdin and
 * answers each with one line of JSON on stdout, in order; exits when stdin closes. Started only by
 * ../bench/scale-lab.ts, inside the scale lab's host namespace.
 */
import { createInterface } from 'node:readline';
import { parseDriverConfig, parseRequest, ScaleDriver, type DriverReply } from './scale-driver.js';

const config = parseDriverConfig(process.argv.slice(2));
if (config === null) {
  process.stderr.write('usage: scale-driver CONFIG_JSON\n');
  process.exitCode = 2;
} else {
  const driver = new ScaleDriver(config);
  const answer = (reply: DriverReply): void => void process.stdout.write(`${JSON.stringify(reply)}\n`);
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  // One request at a time, in order: the next line waits for the previous answer.
  void (async () => {
    for await (const line of lines) {
      if (line.trim() === '') continue;
      const req = parseRequest(line);
      if (typeof req === 'string') {
        answer({ ok: false, error: req });
        continue;
      }
      answer(await driver.handle(req).catch((err: unknown): DriverReply => ({ ok: false, error: err instanceof Error ? err.message : String(err) })));
    }
  })();
}
