import { TwillError } from '../../errors.js';

/** Every lab object (namespace) is named `twl-<lab>-<role>`; the prefix is how `down` finds them. */
export const NS_PREFIX = 'twl-';
export const DEFAULT_LAB_NAME = 'lab';
export const DEFAULT_LAB_ROOT = '/tmp/twill-lab';

// Lower-case letters and digits only: no '-', so one lab's prefix is never another lab's.
const NAME_RE = /^[a-z][a-z0-9]{0,5}$/;

export function validateLabName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `lab name "${name}" must be 1-6 lower-case letters or digits, starting with a letter`, {
      details: { name },
    });
  }
  return name;
}

export function labPrefix(name: string): string {
  return `${NS_PREFIX}${name}-`;
}

export function defaultLabDir(name: string): string {
  return `${DEFAULT_LAB_ROOT}/${name}`;
}

/**
 * Role suffixes of lab namespaces. New roles (outside, ...) are added here and in LAB_ROLE_RE.
 * Segments are counted from 0: segment 0 is `ul` (as in a flat lab), segment 1 is `ul2`.
 */
export const roles = {
  underlay: (segment: number) => (segment === 0 ? 'ul' : `ul${segment + 1}`),
  router: () => 'rt',
  etcd: () => 'etcd',
  /** A stand-in for the internet: on the underlay, with no route to the pod network. */
  outside: () => 'out',
  host: (i: number) => `h${i}`,
  pod: (host: number, j: number) => `h${host}-p${j}`,
  /** `twill bench scale`'s throwaway namespace for the kernel's floor (one `ip -batch` of N routes). */
  floor: () => 'floor',
} as const;

const LAB_ROLE_RE = /^(?:ul\d*|rt|etcd|out|floor|h\d+|h\d+-p\d+)$/;

export function nsName(lab: string, role: string): string {
  return `${labPrefix(lab)}${role}`;
}

/**
 * True for namespaces this lab created. Matching the role pattern, not just the prefix, keeps
 * `down` from deleting someone else's `twl-<lab>-...` namespace (other tests use `twl-t-hg-...`).
 */
export function isLabNamespace(lab: string, ns: string): boolean {
  const prefix = labPrefix(lab);
  return ns.startsWith(prefix) && LAB_ROLE_RE.test(ns.slice(prefix.length));
}

/** Teardown order: pods, then hosts, etcd and the router, then the underlay segments. */
export function teardownRank(lab: string, ns: string): number {
  const role = ns.slice(labPrefix(lab).length);
  if (/-p\d+$/.test(role)) return 0;
  if (role.startsWith('ul')) return 2;
  return 1;
}

export function parseIntOption(text: string, what: string, min: number, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < min || n > max) {
    throw new TwillError('TWILL_ERR_OPTION_INVALID', `${what} must be an integer from ${min} to ${max}, got "${text}"`, {
      details: { option: what, value: text },
    });
  }
  return n;
}
