import { TwillError } from '../errors.js';
import { formatHostPort, type HostPort } from './addr.js';
import type { AgentStatus } from '../status/types.js';
import type { PathTrace } from '../trace/path.js';

/** GET /v1/status of the agent at `addr`; any failure is TWILL_ERR_STATUS_UNREACHABLE naming the address. */
export async function fetchStatus(addr: HostPort, timeoutMs = 5000): Promise<AgentStatus> {
  const url = `http://${formatHostPort(addr)}/v1/status`;
  const fail = (why: string, cause?: unknown): TwillError =>
    new TwillError('TWILL_ERR_STATUS_UNREACHABLE', `cannot read the twill agent's status at ${url}: ${why}; is the agent running there (--status-addr), and is --addr right?`, {
      cause,
      details: { url },
    });
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    throw fail(cause?.code ?? (err as Error).name, err);
  }
  if (!res.ok) throw fail(`HTTP ${res.status}`);
  const body = (await res.json().catch(() => null)) as Partial<AgentStatus> | null;
  if (!body || typeof body !== 'object' || !body.node || !body.etcd || !Array.isArray(body.peers)) throw fail('the answer is not a twill status');
  return body as AgentStatus;
}

/** GET /v1/trace?dst= of the agent at `addr`: the way from its node to dst. */
export async function fetchTrace(addr: HostPort, dst: string, from?: string, timeoutMs = 10_000): Promise<PathTrace> {
  const url = `http://${formatHostPort(addr)}/v1/trace?dst=${encodeURIComponent(dst)}${from === undefined ? '' : `&from=${encodeURIComponent(from)}`}`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new TwillError('TWILL_ERR_STATUS_UNREACHABLE', `cannot ask the twill agent at ${url}: ${cause?.code ?? (err as Error).name}; is the agent running there (--status-addr), and is --addr right?`, { cause: err, details: { url } });
  }
  const body = (await res.json().catch(() => null)) as (Partial<PathTrace> & { message?: string }) | null;
  if (res.status === 400) throw new TwillError('TWILL_ERR_OPTION_INVALID', body?.message ?? `trace: ${dst} was refused`, { details: { dst } });
  if (!res.ok || !body || !Array.isArray(body.steps) || !Array.isArray(body.problems)) {
    throw new TwillError('TWILL_ERR_STATUS_UNREACHABLE', `the twill agent at ${url} gave no trace (HTTP ${res.status}); is it a twill agent of this version?`, { details: { url } });
  }
  return body as PathTrace;
}
