import { exec } from '../../kernel/exec.js';

export interface HttpAnswer {
  readonly url: string;
  /** 0 when there was no answer (refused, timed out); `body` then says why. */
  readonly status: number;
  readonly body: string;
}

// Runs in the namespace: GETs every URL at once and prints the answers as one JSON array.
const SCRIPT = `const urls = process.argv.slice(1, -1); const ms = Number(process.argv.at(-1));
Promise.all(urls.map((url) => fetch(url, { signal: AbortSignal.timeout(ms) }).then(
  async (r) => ({ url, status: r.status, body: await r.text() }),
  (e) => ({ url, status: 0, body: String(e?.cause?.code ?? e?.name ?? e) }),
))).then((a) => process.stdout.write(JSON.stringify(a)));`;

/**
 * GETs URLs from inside a network namespace (lab addresses are reachable only there), with a
 * short-lived Node.js process: `ip netns exec NS node -e ...`. Never throws for an HTTP error.
 */
export async function httpGetInNetns(ns: string, urls: readonly string[], timeoutMs = 3000): Promise<HttpAnswer[]> {
  if (urls.length === 0) return [];
  const res = await exec(process.execPath, ['-e', SCRIPT, '--', ...urls, String(timeoutMs)], { netns: ns, timeoutMs: timeoutMs + 10_000 });
  return JSON.parse(res.stdout) as HttpAnswer[];
}
