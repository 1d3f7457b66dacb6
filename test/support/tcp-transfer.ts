/** TCP transfers between lab pods, checked end to end by SHA-256. */
import { expect } from 'vitest';
import { inNetns, type LabStateFile } from './lab.js';

const TCP_SINK = `const h=require('crypto').createHash('sha256');const s=require('net').createServer(c=>{c.on('data',d=>h.update(d));c.on('end',()=>{console.log(h.digest('hex'));s.close()})});s.listen(+process.argv[2],process.argv[1]);setTimeout(()=>process.exit(3),60000).unref()`;
const TCP_SOURCE = `const n=+process.argv[2];const b=require('crypto').randomBytes(n);const h=require('crypto').createHash('sha256').update(b).digest('hex');const c=require('net').connect(+process.argv[3],process.argv[1],()=>c.end(b));c.on('close',()=>console.log(h))`;

/** A TCP transfer of `bytes` pseudo-random bytes pod → pod; returns both sides' SHA-256. */
export async function tcpTransfer(state: LabStateFile, fromPod: string, toPod: string, bytes: number, port = 5555): Promise<{ sent: string; received: string }> {
  const to = state.pods.find((p) => p.id === toPod)!;
  const from = state.pods.find((p) => p.id === fromPod)!;
  const server = inNetns(to.ns, process.execPath, ['-e', TCP_SINK, to.ip!, String(port)]);
  await new Promise((r) => setTimeout(r, 300));
  const client = await inNetns(from.ns, process.execPath, ['-e', TCP_SOURCE, to.ip!, String(bytes), String(port)]);
  expect(client.code, client.stderr).toBe(0);
  return { sent: client.stdout.trim(), received: (await server).stdout.trim() };
}
