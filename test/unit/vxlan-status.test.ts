import { describe, expect, it } from 'vitest';
import { renderAgentStatus } from '../../src/cli/status-render.js';
import { describeVxlanStatus, type VxlanDetails } from '../../src/backend/vxlan/status.js';
import { runningStatus } from '../support/status.js';

const DETAILS: VxlanDetails = { vni: 1, port: 8472, vtepMAC: '9a:1e:0d:ab:a0:86', directRouting: true, peersDirect: 1, peersVxlan: 1, repairs: { device: 1, neighbour: 0, fdb: 2, route: 0 } };

describe('vxlan in `twill status`', () => {
  it('describes the tunnel, how peers are reached, and the repairs', () => {
    expect(describeVxlanStatus(DETAILS)).toEqual([
      ['vxlan', 'VNI 1, port 8472, VtepMAC 9a:1e:0d:ab:a0:86, 1 peer(s) over vxlan, DirectRouting on: 1 peer(s) direct'],
      ['repairs', 'device 1, fdb 2'],
    ]);
    expect(describeVxlanStatus({ ...DETAILS, directRouting: false, repairs: { device: 0, neighbour: 0, fdb: 0, route: 0 } })[1]).toEqual(['repairs', 'none']);
    expect(describeVxlanStatus({})).toEqual([]); // an older agent's JSON: nothing to say, no crash
  });

  it('shows a VIA column when the backend says how it reaches its peers', () => {
    const base = runningStatus();
    const peers = [
      { subnet: '10.244.2.0/24', publicIP: '198.18.0.12', backendType: 'vxlan', state: 'programmed' as const, via: 'direct', since: '2029-12-31T00:00:01.000Z' },
      { subnet: '10.244.3.0/24', publicIP: '198.19.0.13', backendType: 'vxlan', state: 'programmed' as const, via: 'vxlan', since: '2029-12-31T00:00:01.000Z' },
      { subnet: '10.244.4.0/24', publicIP: '198.18.0.14', backendType: null, state: 'skipped' as const, reason: 'BackendType (none: udp), not vxlan', since: '2029-12-31T00:00:01.000Z' },
    ];
    const text = renderAgentStatus({ ...base, backend: { type: 'vxlan', mtu: 1450, device: 'flannel.1', routes: 2, details: DETAILS }, peers }, new Date('2029-12-31T00:00:02.000Z'));
    expect(text).toContain('backend  vxlan, mtu 1450, device flannel.1, 2 route(s)');
    expect(text).toContain('vxlan    VNI 1, port 8472');
    expect(text).toMatch(/^SUBNET\s+PUBLIC IP\s+BACKEND\s+STATE\s+VIA\s+SINCE/m);
    expect(text).toMatch(/^10\.244\.2\.0\/24\s+198\.18\.0\.12\s+vxlan\s+programmed\s+direct\s/m);
    expect(text).toMatch(/^10\.244\.4\.0\/24\s+198\.18\.0\.14\s+-\s+skipped\s+-\s+\S+\s+BackendType \(none: udp\), not vxlan$/m);
    expect(renderAgentStatus(base)).not.toContain('VIA'); // host-gw says nothing of it
  });
});
