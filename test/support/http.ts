import { exec } from '../../src/kernel/exec.js';

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

// Runs inside the namespace: one GET, its status and body printed as JSON (0 = no answer).
const SCRIPT = `fetch(process.argv[1], { signal: AbortSignal.timeout(3000) }).then(async (r) => console.log(JSON.stringify({ status: r.status, body: await r.text() })), (e) => console.log(JSON.stringify({ status: 0, body: String(e.cause?.code ?? e) })))`;

/** GET `url` from inside a test namespace (twl-t-*), so nothing outside it is addressed. */
export async function nsGet(ns: string, url: string): Promise<HttpAnswer> {
  if (!ns.startsWith('twl-t')) throw new Error(`refusing to run in namespace ${ns}`);
  const res = await exec(process.execPath, ['-e', SCRIPT, url], { netns: ns });
  return JSON.parse(res.stdout) as HttpAnswer;
}
