import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeIpv4Packet } from '../support/udp-fakes.js';
import { assertBuilt, inNetns, isRoot, labNamespaces, readLabState, twill, type LabStateFile } from '../support/lab.js';
import { tcpTransfer } from '../support/tcp-transfer.js';
import { eventually } from '../support/logger.js';

// The udp backend between real agents in the lab: TCP data across hosts, flat and routed,
// and the inbound acceptance rules seen from a pod, with datagrams crafted in flannel's format.
const LABS = { flat: 't3df', routed: 't3dr' } as const;
const dirOf = (name: string): string => `/tmp/twill-lab/${name}`;

describe.skipIf(!isRoot())('udp backend end to end', () => {
  const states: Record<string, LabStateFile> = {};

  beforeAll(async () => {
    assertBuilt();
    for (const [topology, name] of Object.entries(LABS)) {
      await twill(['lab', 'down', '--name', name]);
      const up = await twill(['lab', 'up', '--name', name, '--hosts', '3', '--backend', 'udp', '--topology', topology]);
      expect(up.code, up.stderr).toBe(0);
      states[topology] = await readLabState(dirOf(name));
    }
  });

  afterAll(async () => {
    for (const name of Object.values(LABS)) {
      await twill(['lab', 'down', '--name', name]);
      expect(await labNamespaces(name)).toEqual([]);
    }
  });

  it.each(['flat', 'routed'])('carries 64 MiB of TCP each way at once between pods on different hosts, intact (%s)', async (topology) => {
    // routed: h1 and h3 sit on segment A, h2 on B behind the router.
    const st = states[topology]!;
    const [there, back] = await Promise.all([tcpTransfer(st, 'h1-p1', 'h2-p1', 64 << 20, 5555), tcpTransfer(st, 'h2-p1', 'h1-p1', 64 << 20, 5556)]);
    expect(there.received).toBe(there.sent);
    expect(back.received).toBe(back.sent);
    const { sent, received } = await tcpTransfer(st, 'h2-p1', 'h3-p1', 4 << 20);
    expect(received).toBe(sent);
  });

  describe('inbound datagrams (routed lab)', () => {
    let listener: ChildProcess;
    let heard = '';
    const st = () => states.routed!;
    const host = (id: string) => st().hosts.find((h) => h.id === id)!;
    const pod = (id: string) => st().pods.find((p) => p.id === id)!;

    beforeAll(async () => {
      const code = `require('dgram').createSocket('udp4').on('message',(m,r)=>console.log(r.address+' '+m)).bind(7777,()=>console.log('ready'))`;
      listener = spawn('ip', ['netns', 'exec', pod('h1-p1').ns, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
      listener.stdout!.on('data', (b: Buffer) => (heard += b.toString()));
      await eventually(() => heard.includes('ready'), 10_000, 'the listener in the pod');
    });
    afterAll(() => listener?.kill());

    /** Sends, from namespace `ns`, a flannel-format datagram: the raw inner IPv4 packet as UDP payload to <h1>:8285. */
    async function sendEncapsulated(ns: string, innerSrc: string, text: string): Promise<void> {
      const udp = Buffer.alloc(8 + text.length);
      udp.writeUInt16BE(40000, 0);
      udp.writeUInt16BE(7777, 2);
      udp.writeUInt16BE(udp.length, 4); // checksum 0: none, allowed for UDP over IPv4
      udp.write(text, 8);
      const inner = makeIpv4Packet({ src: innerSrc, dst: pod('h1-p1').ip!, payload: udp });
      const send = `const s=require('dgram').createSocket('udp4');s.send(Buffer.from(process.argv[1],'hex'),8285,process.argv[2],()=>s.close())`;
      const res = await inNetns(ns, process.execPath, ['-e', send, inner.toString('hex'), host('h1').ip]);
      expect(res.code, res.stderr).toBe(0);
    }

    it('delivers a datagram from a peer whose inner source lies in that peer subnet', async () => {
      await sendEncapsulated(host('h2').ns, pod('h2-p1').ip!, 'from-peer');
      await eventually(() => heard.includes('from-peer'), 5000, 'the crafted datagram in the pod');
      expect(heard).toContain(`${pod('h2-p1').ip} from-peer`);
    });

    it('drops a datagram from a non-peer address, and one with a spoofed inner source', async () => {
      const router = `twl-${LABS.routed}-rt`;
      await sendEncapsulated(router, pod('h2-p1').ip!, 'from-stranger'); // router: not a lease holder
      await sendEncapsulated(host('h2').ns, pod('h3-p1').ip!, 'spoofed'); // h2 claiming h3's pod
      await sendEncapsulated(host('h2').ns, pod('h2-p1').ip!, 'control'); // sent last: proves delivery still works
      await eventually(() => heard.includes('control'), 5000, 'the control datagram');
      expect(heard).not.toContain('from-stranger');
      expect(heard).not.toContain('spoofed');
    });
  });
});
