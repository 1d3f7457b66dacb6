import type { FeedStarter, MonitorFn } from './monitor.js';
import { normalizeDst, type KernelRoute } from './routes.js';

/** rtnetlink's number for table main (`ip -N` prints no `table` for it). */
const MAIN_TABLE = 254;

/**
 * One line of `ip -4 -N monitor route link address`: a route added, replaced or deleted (in any
 * table), or a link or address change on a device. IPv4 drops the routes through a device that
 * goes down without a word, so a device's own events matter as much as route events.
 */
export type KernelEvent =
  | { readonly kind: 'route'; readonly deleted: boolean; readonly table: number; readonly route: KernelRoute }
  | { readonly kind: 'device'; readonly deleted: boolean; readonly dev: string };

// "3: eth0@if5: <BROADCAST,...> mtu 1500 ..." (link) or "3: eth0    inet 10.0.0.1/24 ..." (address).
const DEVICE_LINE = /^(\d+): ([^\s:@]+)(?:@\S*)?:?\s/;

/** Pure: one monitor line as an event; null for continuation lines and anything else. */
export function parseKernelEvent(line: string): KernelEvent | null {
  if (line === '' || /^\s/.test(line)) return null;
  const deleted = line.startsWith('Deleted ');
  const text = deleted ? line.slice('Deleted '.length) : line;
  const device = DEVICE_LINE.exec(text);
  if (device) return { kind: 'device', deleted, dev: device[2]! };
  const words = text.trim().split(/\s+/);
  // -N prints a route's type as a number first when it is not unicast ("2 10.0.0.1 ... table 255").
  if (/^\d+$/.test(words[0] ?? '')) words.shift();
  const dst = words.shift();
  if (dst === undefined || !(dst === 'default' || /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dst))) return null;
  const field = (name: string) => {
    const i = words.indexOf(name);
    return i >= 0 ? words[i + 1] : undefined;
  };
  const [gateway, dev, proto, table] = [field('via'), field('dev'), field('proto'), field('table')];
  const route: KernelRoute = {
    dst: normalizeDst(dst),
    ...(gateway === undefined ? {} : { gateway }),
    ...(dev === undefined ? {} : { dev }),
    ...(proto !== undefined && /^\d+$/.test(proto) ? { proto: Number(proto) } : {}),
  };
  return { kind: 'route', deleted, table: table !== undefined && /^\d+$/.test(table) ? Number(table) : MAIN_TABLE, route };
}

/** True when an event is a route of table main. */
export const inMainTable = (e: KernelEvent): e is Extract<KernelEvent, { kind: 'route' }> => e.kind === 'route' && e.table === MAIN_TABLE;

/** 8 MiB of socket buffer: a burst of 5,000 route changes overflowed ip's default (and was "lost"). */
const MONITOR_RCVBUF = String(8 << 20);

/** A feed of route, link and address events of one namespace (`ip -4 -N monitor route link address`). */
export function routeEventFeed(monitor: MonitorFn, netns: string | undefined): FeedStarter<KernelEvent> {
  return (handlers) =>
    monitor('ip', ['-4', '-N', '-rcvbuf', MONITOR_RCVBUF, 'monitor', 'route', 'link', 'address'], netns, {
      event(line) {
        const e = parseKernelEvent(line);
        if (e) handlers.event(e);
      },
      lost: (reason) => handlers.lost(reason),
      end: (err) => handlers.end(err),
    });
}
