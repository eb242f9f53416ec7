// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8 over eight 256-entry tables.
// Castagnoli rather than the zip CRC-32: better error detection for the record sizes a log writes, and the
// checksum iSCSI, ext4 metadata and etcd's WAL use.

const POLY = 0x82f63b78
const TABLES: Uint32Array[] = (() => {
  const t: Uint32Array[] = []
  const t0 = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1
    t0[n] = c >>> 0
  }
  t.push(t0)
  for (let k = 1; k < 8; k++) {
    const prev = t[k - 1]!
    const cur = new Uint32Array(256)
    for (let n = 0; n < 256; n++) cur[n] = (prev[n]! >>> 8) ^ t0[prev[n]! & 0xff]!
    t.push(cur)
  }
  return t
})()
const [T0, T1, T2, T3, T4, T5, T6, T7] = TABLES as [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
]

/**
 * Continues a CRC-32C over `bytes[start, end)`. Start a fresh checksum with `crc = 0`; the result of one call
 * may be passed as `crc` to the next to checksum data given in pieces.
 */
export function crc32c(bytes: Uint8Array, crc = 0, start = 0, end = bytes.length): number {
  let c = ~crc >>> 0
  let i = start
  const fast = end - ((end - i) & 7)
  while (i < fast) {
    const a = (c ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24))) >>> 0
    c =
      T7[a & 0xff]! ^
      T6[(a >>> 8) & 0xff]! ^
      T5[(a >>> 16) & 0xff]! ^
      T4[a >>> 24]! ^
      T3[bytes[i + 4]!]! ^
      T2[bytes[i + 5]!]! ^
      T1[bytes[i + 6]!]! ^
      T0[bytes[i + 7]!]!
    i += 8
  }
  while (i < end) c = T0[(c ^ bytes[i++]!) & 0xff]! ^ (c >>> 8)
  return ~c >>> 0
}

/** Bytes checksummed between two yields to the event loop by `crc32cInSlices`. */
const CRC_SLICE = 1 << 20

/**
 * The CRC-32C of `data[start, end)` continuing from `crc`, computed `CRC_SLICE` bytes at a time with the event
 * loop let go between slices: at a few hundred MB/s, the checksum of a 100 MB snapshot in one call held the
 * loop for a third of a second, past a raft election timeout on a loaded machine (issue #18).
 */
export async function crc32cInSlices(
  data: Uint8Array,
  crc: number,
  start: number,
  end: number,
): Promise<number> {
  for (let c = start; c < end; c += CRC_SLICE) {
    if (c > start) await new Promise<void>((resolve) => setImmediate(resolve))
    crc = crc32c(data, crc, c, Math.min(end, c + CRC_SLICE))
  }
  return crc
}
