/** Renames an object's keys to the spelling in `names` where they match case-insensitively (flannel's JSON decoding). */
export function canonicalKeys(obj: Readonly<Record<string, unknown>>, names: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    const name = names.find((n) => n.toLowerCase() === k.toLowerCase()) ?? k;
    out[name] = v;
  }
  return out;
}
