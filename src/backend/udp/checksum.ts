/**
 * The Internet checksum (RFC 1071) and the incremental TTL patch (RFC 1624). Pure.
 */

/** Folds a 32-bit accumulator to 16 bits with end-around carry. */
function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** The ones'-complement sum of `buf[start, end)` as 16-bit big-endian words (odd tail padded). */
export function onesSum(buf: Buffer, start: number, end: number): number {
  let sum = 0;
  let i = start;
  for (; i + 1 < end; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  return fold(sum);
}

/** The checksum to store in a field covering `buf[start, end)` (that field must hold 0 while computing). */
export function internetChecksum(buf: Buffer, start: number, end: number): number {
  return ~onesSum(buf, start, end) & 0xffff;
}

/** Recomputes and stores the IPv4 header checksum (header length from IHL). */
export function writeHeaderChecksum(pkt: Buffer): void {
  const hl = (pkt[0]! & 0x0f) << 2;
  pkt[10] = 0;
  pkt[11] = 0;
  pkt.writeUInt16BE(internetChecksum(pkt, 0, hl), 10);
}

/** True when the header's checksum verifies: the sum over the header, checksum included, is all ones. */
export function headerChecksumValid(pkt: Buffer, headerLen: number): boolean {
  return onesSum(pkt, 0, headerLen) === 0xffff;
}

/**
 * Decrements the TTL in place and patches the header checksum without re-summing the header:
 * RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), where m is the 16-bit word TTL|protocol.
 * Returns false (and leaves the packet alone) when the TTL is ≤ 1: the packet must not be forwarded.
 */
export function decrementTtl(pkt: Buffer): boolean {
  const ttl = pkt[8]!;
  if (ttl <= 1) return false;
  const old = (ttl << 8) | pkt[9]!;
  const hc = (pkt[10]! << 8) | pkt[11]!;
  const sum = fold((~hc & 0xffff) + (~old & 0xffff) + (old - 0x100));
  const patched = ~sum & 0xffff;
  pkt[8] = ttl - 1;
  pkt[10] = patched >>> 8;
  pkt[11] = patched & 0xff;
  return true;
}
