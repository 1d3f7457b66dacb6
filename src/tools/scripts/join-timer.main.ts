/**
 *   node join-timer.main.js PLAN_JSON
 *
 * Times simulated joins (join-timer.ts) and prints them as one JSON array of JoinSample,
 * nothing else; prints nothing for a cleanup plan. Started only by ../bench/convergence.ts,
 * inside the lab's etcd namespace.
 */
import { runJoinTimer, type JoinPlan } from './join-timer.js';

const [json, ...rest] = process.argv.slice(2);
if (json === undefined || rest.length > 0) {
  process.stderr.write('usage: join-timer PLAN_JSON\n');
  process.exitCode = 2;
} else {
  Promise.resolve()
    .then(() => runJoinTimer(JSON.parse(json) as JoinPlan))
    .then(
      (samples) => {
        if (samples !== null) process.stdout.write(JSON.stringify(samples));
      },
      (err: unknown) => {
        process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
      },
    );
}
