/**
 * Every error a user can see, in one place. Each has a stable code (TWILL_ERR_<AREA>_<WHAT>),
 * a flag saying whether retrying can help, and a line of documentation; docs/errors.md lists
 * the same codes and a unit test keeps the two in step. Callers branch on `code`, never on text.
 */
export const ERROR_CATALOG = {
  TWILL_ERR_CONFIG_INVALID: { transient: true, doc: 'The network config JSON breaks a rule; the message names the field. The agent waits for a corrected config; `twill config set` refuses it.' },
  TWILL_ERR_CONFIG_MISSING: { transient: true, doc: 'No network config at <prefix>/config yet.' },
  TWILL_ERR_OPTION_INVALID: { transient: false, doc: 'A command-line flag or TWILL_* variable has a bad value.' },
  TWILL_ERR_ETCD_UNAVAILABLE: { transient: true, doc: 'etcd could not be reached or did not answer in time.' },
  TWILL_ERR_ETCD_REQUEST: { transient: false, doc: 'etcd refused a request (permission, bad request).' },
  TWILL_ERR_ETCD_AUTH: { transient: false, doc: 'etcd refused --etcd-username/--etcd-password (no such user, wrong password).' },
  TWILL_ERR_ETCD_WATCH_CANCELLED: { transient: true, doc: 'etcd ended the lease watch (its start revision was compacted, say); the agent lists the leases again and watches from there.' },
  TWILL_ERR_ETCD_TLS_FILE: { transient: false, doc: 'A file named by --etcd-cafile, --etcd-certfile or --etcd-keyfile cannot be read or is not PEM.' },
  TWILL_ERR_LEASE_NETWORK_FULL: { transient: true, doc: 'Every subnet between SubnetMin and SubnetMax is leased.' },
  TWILL_ERR_LEASE_RACE_LOST: { transient: true, doc: 'Another node created the same subnet key first; allocation is retried.' },
  TWILL_ERR_LEASE_LOST: { transient: true, doc: 'The own lease vanished (expired or deleted); it is re-acquired.' },
  TWILL_ERR_KERNEL_COMMAND: { transient: true, doc: 'An ip/nft command failed; stderr is in the cause.' },
  TWILL_ERR_KERNEL_IFACE: { transient: false, doc: 'The interface named by --iface (or of the default route) has no usable IPv4 address, or does not exist.' },
  TWILL_ERR_KERNEL_NOT_FOUND: { transient: false, doc: 'A required program (ip, nft, etcd, CNI plugin) is not installed.' },
  TWILL_ERR_KERNEL_TUN: { transient: false, doc: 'A TUN device could not be created or read (name in use or invalid, namespace missing, addon not built); errno in details.' },
  TWILL_ERR_KERNEL_TUN_MISSING: { transient: false, doc: '/dev/net/tun is not available: load the tun module (modprobe tun) or pass the device into the container.' },
  TWILL_ERR_KERNEL_TUN_PERMISSION: { transient: false, doc: 'Creating a TUN device was refused: run as root or with CAP_NET_ADMIN.' },
  TWILL_ERR_BACKEND_UNKNOWN: { transient: false, doc: 'Backend.Type names a backend twill does not have.' },
  TWILL_ERR_UDP_PORT_IN_USE: { transient: false, doc: 'The udp backend cannot bind Backend.Port (default 8285): another process (flanneld?) holds it.' },
  TWILL_ERR_UDP_SOCKET: { transient: false, doc: 'The udp backend cannot open or bind its UDP socket for another reason; the cause says why.' },
  TWILL_ERR_UDP_TUN: { transient: false, doc: 'The udp backend cannot create or configure its TUN device (/dev/net/tun, CAP_NET_ADMIN, the native addon, ip).' },
  TWILL_ERR_VXLAN_DEVICE: { transient: false, doc: 'The vxlan backend cannot create or configure its device `flannel.<VNI>` (the vxlan kernel module, CAP_NET_ADMIN, the underlay device); the cause says why.' },
  TWILL_ERR_API_ADDR_IN_USE: { transient: false, doc: 'The status API cannot listen on --status-addr (default 127.0.0.1:8475), or the lab page on its --port (default 8480): another process holds the address; pick another.' },
  TWILL_ERR_API_ADDR: { transient: false, doc: 'The status API (or the lab page) cannot listen on its address for another reason (no such local address, permission); the cause says why.' },
  TWILL_ERR_API_NOT_FOUND: { transient: false, doc: 'The status API has no such path (it serves /healthz, /readyz, /v1/status, /v1/trace and /metrics), nor the lab page (/, its files, /api/lab, /api/agents, /api/trace).' },
  TWILL_ERR_API_METHOD: { transient: false, doc: 'The status API or lab page path exists but not for this HTTP method (every path is GET only).' },
  TWILL_ERR_API_BAD_REQUEST: { transient: false, doc: 'The status API or the lab page could not read the request (bad URL, bad header, a missing ?dst=; the lab page also refuses a Host that is not loopback).' },
  TWILL_ERR_STATUS_UNREACHABLE: { transient: true, doc: '`twill status` could not reach the agent at --addr, or got an answer that is not its status.' },
  TWILL_ERR_LAB_NOT_ROOT: { transient: false, doc: 'twill lab needs root (network namespaces).' },
  TWILL_ERR_LAB_STATE: { transient: false, doc: 'The lab is not in a state for this command (not up, already up, a step timed out).' },
  TWILL_ERR_UNEXPECTED: { transient: false, doc: 'An error twill has no code for: a bug. The message and the log line say where; please report it.' },
} as const satisfies Record<string, { transient: boolean; doc: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export class TwillError extends Error {
  readonly code: ErrorCode;
  readonly transient: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TwillError';
    this.code = code;
    this.transient = ERROR_CATALOG[code].transient;
    this.details = Object.freeze({ ...options.details });
  }
}

export function isTwillError(err: unknown, code?: ErrorCode): err is TwillError {
  return err instanceof TwillError && (code === undefined || err.code === code);
}

/** The code to log or show for any error; one twill has no code for is TWILL_ERR_UNEXPECTED. */
export function errorCode(err: unknown): ErrorCode {
  return isTwillError(err) ? err.code : 'TWILL_ERR_UNEXPECTED';
}

/** Retry is a property of the error: unknown errors are not retried blindly. */
export function isTransient(err: unknown): boolean {
  return err instanceof TwillError && err.transient;
}
