import { fileURLToPath } from 'node:url';
import { nodeScriptInNetns } from './node-script.js';
import type { HttpAnswer } from '../scripts/http-get.js';

export type { HttpAnswer } from '../scripts/http-get.js';

// From src/tools/kernel and dist/tools/kernel alike: the built program, never the TypeScript.
export const HTTP_GET_PROGRAM = fileURLToPath(new URL('../../../dist/tools/scripts/http-get.main.js', import.meta.url));

/**
 * GETs URLs from inside a network namespace (lab addresses are reachable only there), all at
 * once, with a short-lived Node.js process: `ip netns exec NS node http-get.main.js ...`.
 * Never throws for an HTTP error or a refused connection (status 0).
 */
export async function httpGetInNetns(ns: string, urls: readonly string[], timeoutMs = 3000): Promise<HttpAnswer[]> {
  if (urls.length === 0) return [];
  const out = await nodeScriptInNetns({ ns, file: HTTP_GET_PROGRAM, args: [...urls, String(timeoutMs)], timeoutMs: timeoutMs + 10_000 });
  return JSON.parse(out) as HttpAnswer[];
}
