/** Named network namespaces live here (`ip netns add` bind-mounts them). */
export const NETNS_DIR = '/var/run/netns';

/** Where a named network namespace is mounted (what setns(2) opens). */
export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`;
}
