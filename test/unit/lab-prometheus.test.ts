import { describe, expect, it } from 'vitest';
import { countHealthy, prometheusArgs, prometheusConfig, prometheusUrl } from '../../src/tools/lab/prometheus.js';
import { planLab } from '../../src/tools/lab/topology.js';

const plan = planLab({ name: 'x', hosts: 2, podsPerHost: 1, backend: 'host-gw', topology: 'routed', dir: '/tmp/twill-lab/x', prometheus: true });

describe('lab prometheus', () => {
  it("scrapes every agent's status address each second, labelled by host", () => {
    expect(prometheusConfig(plan)).toBe(
      [
        '# twill lab x: written by "twill lab up --prometheus"',
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        '  evaluation_interval: 1s',
        'scrape_configs:',
        '  - job_name: twill',
        '    static_configs:',
        "      - targets: ['198.18.0.11:8475']",
        "        labels: { host: 'h1' }",
        "      - targets: ['198.19.0.12:8475']",
        "        labels: { host: 'h2' }",
        '',
      ].join('\n'),
    );
  });

  it("listens on the etcd namespace's underlay address and keeps everything in the lab dir", () => {
    expect(prometheusUrl(plan)).toBe('http://198.18.0.2:9090');
    expect(prometheusArgs(plan)).toEqual([
      '--config.file=/tmp/twill-lab/x/prometheus/prometheus.yml',
      '--storage.tsdb.path=/tmp/twill-lab/x/prometheus/data',
      '--web.listen-address=198.18.0.2:9090',
      '--storage.tsdb.retention.time=1d',
    ]);
  });

  it('counts the targets Prometheus scraped successfully', () => {
    const body = JSON.stringify({ status: 'success', data: { activeTargets: [{ health: 'up' }, { health: 'unknown' }, { health: 'up' }, { health: 'down' }] } });
    expect(countHealthy(body)).toBe(2);
    expect(countHealthy('not json')).toBe(0);
    expect(countHealthy('{"data":{}}')).toBe(0);
  });
});
