import { describe, expect, it } from 'vitest';
import { OutageLog } from '../../src/lib/outage-log.js';
import { memoryLogger } from '../support/logger.js';

const UNAVAILABLE = { code: 'TWILL_ERR_ETCD_UNAVAILABLE', message: 'read the network config: etcd is unreachable' };

function outageLog() {
  let ms = 1_000_000;
  const log = memoryLogger();
  const outage = new OutageLog({ logger: log.logger, subject: 'etcd', now: () => ms });
  return { outage, advance: (seconds: number) => (ms += seconds * 1000), lines: log.lines };
}

describe('outage log', () => {
  it('says a 5-minute outage in one line at the start, one at the end with its duration, and at most a reminder a minute', () => {
    const t = outageLog();
    t.outage.succeeded(); // all is well: nothing to say
    // Three components fail every second or so, each time (the probe, the watch, the renewal).
    for (let s = 0; s < 300; s++) {
      t.outage.failed(UNAVAILABLE);
      t.outage.failed({ code: 'TWILL_ERR_ETCD_UNAVAILABLE', message: 'lease watch: etcd is unreachable' });
      t.advance(1);
    }
    t.outage.succeeded();
    t.outage.succeeded();
    const lines = t.lines().map((l) => ({ level: l.level, msg: l.msg, at: l.time }));
    expect(lines.map((l) => l.msg)).toEqual([
      'etcd unreachable; retrying',
      'etcd still unreachable',
      'etcd still unreachable',
      'etcd still unreachable',
      'etcd still unreachable',
      'etcd reachable again',
    ]);
    const [start, ...rest] = t.lines();
    expect(start).toMatchObject({ level: 40, code: 'TWILL_ERR_ETCD_UNAVAILABLE', why: UNAVAILABLE.message });
    const reminders = rest.slice(0, -1);
    expect(reminders.map((l) => l.downSeconds)).toEqual([60, 120, 180, 240]);
    expect(rest.at(-1)).toMatchObject({ level: 30, downSeconds: 300, failures: 600 });
  });

  it('starts a new outage after the end of the last, and is down only in between', () => {
    const t = outageLog();
    t.outage.failed(UNAVAILABLE);
    expect(t.outage.down).toBe(true);
    t.advance(2.5);
    t.outage.succeeded();
    expect(t.outage.down).toBe(false);
    t.advance(1);
    t.outage.failed(UNAVAILABLE);
    t.outage.succeeded();
    expect(t.lines().map((l) => [l.msg, l.downSeconds])).toEqual([
      ['etcd unreachable; retrying', undefined],
      ['etcd reachable again', 2.5],
      ['etcd unreachable; retrying', undefined],
      ['etcd reachable again', 0],
    ]);
  });
});
