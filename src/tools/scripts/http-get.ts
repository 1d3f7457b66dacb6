/**
 * The lab's HTTP client, run as its own short-lived program (http-get.main.ts) inside a lab
 * namespace, where lab addresses are reachable: httpGetInNetns (../kernel/http.ts) starts it
 * with `ip netns exec`. Nothing but fetch, so that the program starts fast.
 */

export interface HttpAnswer {
  readonly url: string;
  /** 0 when there was no answer (refused, timed out); `body` then says why. */
  readonly status: number;
  readonly body: string;
}

/**
 * GETs every URL at once; a failed request is an answer with status 0. A body that fails to
 * arrive rejects the whole call (the program then exits 1).
 */
export function getAll(urls: readonly string[], timeoutMs: number): Promise<HttpAnswer[]> {
  return Promise.all(
    urls.map((url) =>
      fetch(url, { signal: AbortSignal.timeout(timeoutMs) }).then(
        async (r): Promise<HttpAnswer> => ({ url, status: r.status, body: await r.text() }),
        (err: unknown): HttpAnswer => ({ url, status: 0, body: failureName(err) }),
      ),
    ),
  );
}

/** Pure: why a request failed, as callers print it: the socket's code (ECONNREFUSED), else the error's name (TimeoutError). */
export function failureName(err: unknown): string {
  const e = err as { cause?: { code?: unknown }; name?: unknown } | null | undefined;
  return String(e?.cause?.code ?? e?.name ?? err);
}

/** Pure: the program's arguments, `URL... TIMEOUT_MS`; null when they are not that. */
export function parseHttpGetArgs(argv: readonly string[]): { urls: string[]; timeoutMs: number } | null {
  const timeoutMs = Number(argv.at(-1));
  if (argv.length < 2 || !Number.isInteger(timeoutMs) || timeoutMs <= 0) return null;
  return { urls: argv.slice(0, -1), timeoutMs };
}
