// A small strict DER codec: definite minimal lengths, low tag numbers only, bounded size and depth,
// every length checked against its parent before anything is read. Nothing here trusts its input.
import { PkiError } from '../errors.js'

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const

/** Largest DER object accepted anywhere (certificates, CSRs and keys are far smaller). */
export const MAX_DER_SIZE = 64 * 1024
/** Deepest nesting of constructed values accepted. */
export const MAX_DER_DEPTH = 24

export interface DerNode {
  readonly tag: number
  /** The whole encoding (tag, length and contents): a view into the input. */
  readonly raw: Uint8Array
  /** The contents octets: a view into the input. */
  readonly value: Uint8Array
  /** Children of a constructed value, else undefined. */
  readonly children: readonly DerNode[] | undefined
}

function fail(message: string): never {
  throw new PkiError('MALFORMED_DER', message)
}

export interface DecodeOptions {
  maxSize?: number
  maxDepth?: number
}

/** Decodes exactly one DER value filling all of `input`. Throws PkiError MALFORMED_DER (or TOO_LARGE). */
export function decodeDer(input: Uint8Array, options: DecodeOptions = {}): DerNode {
  const maxSize = options.maxSize ?? MAX_DER_SIZE
  const maxDepth = options.maxDepth ?? MAX_DER_DEPTH
  if (input.length > maxSize)
    throw new PkiError('TOO_LARGE', `DER input of ${input.length} bytes exceeds ${maxSize}`)
  if (input.length === 0) fail('empty DER input')
  const [node, end] = readNode(input, 0, input.length, 0, maxDepth)
  if (end !== input.length) fail(`${input.length - end} trailing bytes after DER value`)
  return node
}

function readNode(
  buf: Uint8Array,
  pos: number,
  limit: number,
  depth: number,
  maxDepth: number,
): [DerNode, number] {
  const start = pos
  if (limit - pos < 2) fail(`truncated header at offset ${pos}`)
  const tag = buf[pos++]!
  if ((tag & 0x1f) === 0x1f) fail(`high tag number form at offset ${start} is not supported`)
  let len = buf[pos++]!
  if (len & 0x80) {
    const n = len & 0x7f
    if (n === 0) fail(`indefinite length at offset ${start}`)
    if (n > 3) fail(`length of ${n} octets at offset ${start} is too large`)
    if (limit - pos < n) fail(`truncated length at offset ${start}`)
    if (buf[pos] === 0) fail(`non-minimal length at offset ${start}`)
    len = 0
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos++]!
    if (len < 0x80) fail(`non-minimal length at offset ${start}`)
  }
  if (len > limit - pos) fail(`length ${len} at offset ${start} overruns its container`)
  const end = pos + len
  const value = buf.subarray(pos, end)
  let children: DerNode[] | undefined
  if (tag & 0x20) {
    if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth} at offset ${start}`)
    children = []
    let p = pos
    while (p < end) {
      const [child, next] = readNode(buf, p, end, depth + 1, maxDepth)
      children.push(child)
      p = next
    }
  }
  return [{ tag, raw: buf.subarray(start, end), value, children }, end]
}

// ---- typed readers over a decoded tree ----

export function expectTag(node: DerNode | undefined, tag: number, what: string): DerNode {
  if (node === undefined) fail(`missing ${what}`)
  if (node.tag !== tag) fail(`${what}: expected tag 0x${hex2(tag)}, got 0x${hex2(node.tag)}`)
  return node
}

export function seqOf(
  node: DerNode | undefined,
  what: string,
  tag: number = TAG.SEQUENCE,
): readonly DerNode[] {
  return expectTag(node, tag, what).children!
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0')
}

/** A non-negative INTEGER's magnitude (minimal encoding enforced; negatives rejected). */
export function readUnsignedInteger(node: DerNode | undefined, what: string): Uint8Array {
  const v = expectTag(node, TAG.INTEGER, what).value
  if (v.length === 0) fail(`${what}: empty INTEGER`)
  if (v.length > 1 && ((v[0] === 0 && (v[1]! & 0x80) === 0) || (v[0] === 0xff && (v[1]! & 0x80) !== 0))) {
    fail(`${what}: non-minimal INTEGER`)
  }
  if (v[0]! & 0x80) fail(`${what}: negative INTEGER`)
  return v[0] === 0 && v.length > 1 ? v.subarray(1) : v
}

export function readSmallInteger(node: DerNode | undefined, what: string): number {
  const v = readUnsignedInteger(node, what)
  if (v.length > 4) fail(`${what}: INTEGER too large`)
  let n = 0
  for (const b of v) n = n * 256 + b
  return n
}

export function readBoolean(node: DerNode | undefined, what: string): boolean {
  const v = expectTag(node, TAG.BOOLEAN, what).value
  if (v.length !== 1 || (v[0] !== 0 && v[0] !== 0xff)) fail(`${what}: invalid BOOLEAN`)
  return v[0] === 0xff
}

export function readNull(node: DerNode | undefined, what: string): void {
  if (expectTag(node, TAG.NULL, what).value.length !== 0) fail(`${what}: NULL with contents`)
}

/** A BIT STRING's bits and its count of unused trailing bits. */
export function readBitString(
  node: DerNode | undefined,
  what: string,
): { bytes: Uint8Array; unused: number } {
  const v = expectTag(node, TAG.BIT_STRING, what).value
  if (v.length === 0) fail(`${what}: empty BIT STRING`)
  const unused = v[0]!
  if (unused > 7 || (v.length === 1 && unused !== 0)) fail(`${what}: invalid unused-bit count`)
  const bytes = v.subarray(1)
  if (unused && (bytes[bytes.length - 1]! & ((1 << unused) - 1)) !== 0) fail(`${what}: unused bits not zero`)
  return { bytes, unused }
}

/** A BIT STRING holding whole octets (keys, signatures). */
export function readOctetAlignedBits(node: DerNode | undefined, what: string): Uint8Array {
  const { bytes, unused } = readBitString(node, what)
  if (unused !== 0) fail(`${what}: BIT STRING is not octet-aligned`)
  return bytes
}

export function readOctetString(node: DerNode | undefined, what: string): Uint8Array {
  return expectTag(node, TAG.OCTET_STRING, what).value
}

export function readOid(node: DerNode | undefined, what: string): string {
  const v = expectTag(node, TAG.OID, what).value
  if (v.length === 0 || v.length > 64) fail(`${what}: OID of invalid length`)
  if (v[v.length - 1]! & 0x80) fail(`${what}: truncated OID`)
  const parts: number[] = []
  let acc = 0
  let first = true
  for (let i = 0; i < v.length; i++) {
    const b = v[i]!
    if (acc === 0 && b === 0x80) fail(`${what}: non-minimal OID arc`)
    acc = acc * 128 + (b & 0x7f)
    if (acc > Number.MAX_SAFE_INTEGER / 256) fail(`${what}: OID arc too large`)
    if (!(b & 0x80)) {
      if (first) {
        const x = acc < 40 ? 0 : acc < 80 ? 1 : 2
        parts.push(x, acc - 40 * x)
        first = false
      } else parts.push(acc)
      acc = 0
    }
  }
  return parts.join('.')
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/

/** A directory string (UTF8String, PrintableString, IA5String; T61 and BMP are refused). */
export function readString(node: DerNode | undefined, what: string): string {
  if (node === undefined) fail(`missing ${what}`)
  let s: string
  switch (node.tag) {
    case TAG.UTF8_STRING:
      try {
        s = utf8.decode(node.value)
      } catch {
        fail(`${what}: invalid UTF-8`)
      }
      break
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
      s = ascii(node.value, what)
      if (node.tag === TAG.PRINTABLE_STRING && !PRINTABLE.test(s)) fail(`${what}: invalid PrintableString`)
      break
    default:
      fail(`${what}: unsupported string type 0x${hex2(node.tag)}`)
  }
  return s
}

export function ascii(v: Uint8Array, what: string): string {
  let s = ''
  for (const b of v) {
    if (b > 0x7e || b < 0x20) fail(`${what}: non-printable ASCII`)
    s += String.fromCharCode(b)
  }
  return s
}

/** UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), as RFC 5280 requires them. */
export function readTime(node: DerNode | undefined, what: string): Date {
  if (node === undefined) fail(`missing ${what}`)
  const s = ascii(node.value, what)
  let m: RegExpExecArray | null
  let year: number
  if (node.tag === TAG.UTC_TIME) {
    m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s)
    if (!m) fail(`${what}: invalid UTCTime`)
    const yy = Number(m[1])
    year = yy >= 50 ? 1900 + yy : 2000 + yy
  } else if (node.tag === TAG.GENERALIZED_TIME) {
    m = /^(\d\d\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(s)
    if (!m) fail(`${what}: invalid GeneralizedTime`)
    year = Number(m[1])
    // RFC 5280 uses UTCTime before 2050; refusing years before 1950 also keeps Date.UTC off its 0-99 quirk.
    if (year < 1950) fail(`${what}: GeneralizedTime before 1950`)
  } else fail(`${what}: expected a time`)
  const [mo, d, h, mi, se] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ]
  const t = Date.UTC(year, mo - 1, d, h, mi, se)
  const date = new Date(t)
  if (
    mo < 1 ||
    mo > 12 ||
    date.getUTCDate() !== d ||
    date.getUTCMonth() !== mo - 1 ||
    h > 23 ||
    mi > 59 ||
    se > 59
  ) {
    fail(`${what}: invalid date`)
  }
  return date
}

// ---- encoder ----

function encodeLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n)
  if (n < 0x100) return Uint8Array.of(0x81, n)
  if (n < 0x10000) return Uint8Array.of(0x82, n >> 8, n & 0xff)
  if (n < 0x1000000) return Uint8Array.of(0x83, n >> 16, (n >> 8) & 0xff, n & 0xff)
  throw new RangeError('DER value too large')
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) {
    out.set(p, o)
    o += p.length
  }
  return out
}

export function tlv(tag: number, ...contents: Uint8Array[]): Uint8Array {
  const body = contents.length === 1 ? contents[0]! : concat(contents)
  return concat([Uint8Array.of(tag), encodeLength(body.length), body])
}

export const seq = (...items: Uint8Array[]): Uint8Array => tlv(TAG.SEQUENCE, ...items)
/** A SET OF: DER sorts the encodings. */
export const setOf = (...items: Uint8Array[]): Uint8Array => tlv(TAG.SET, ...[...items].sort(compareBytes))
export const octetString = (b: Uint8Array): Uint8Array => tlv(TAG.OCTET_STRING, b)
export const bitString = (b: Uint8Array, unused = 0): Uint8Array =>
  tlv(TAG.BIT_STRING, Uint8Array.of(unused), b)
export const bool = (v: boolean): Uint8Array => tlv(TAG.BOOLEAN, Uint8Array.of(v ? 0xff : 0))
export const utf8String = (s: string): Uint8Array => tlv(TAG.UTF8_STRING, new TextEncoder().encode(s))
export const ia5String = (s: string): Uint8Array => tlv(TAG.IA5_STRING, new TextEncoder().encode(s))
/** [n] EXPLICIT (constructed context tag wrapping the inner encoding). */
export const explicit = (n: number, inner: Uint8Array): Uint8Array => tlv(0xa0 | n, inner)

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
  return a.length - b.length
}

/** INTEGER from an unsigned big-endian magnitude. */
export function unsignedInteger(mag: Uint8Array): Uint8Array {
  let i = 0
  while (i < mag.length - 1 && mag[i] === 0) i++
  let v = mag.subarray(i)
  if (v.length === 0) v = Uint8Array.of(0)
  if (v[0]! & 0x80) v = concat([Uint8Array.of(0), v])
  return tlv(TAG.INTEGER, v)
}

export const smallInteger = (n: number): Uint8Array =>
  unsignedInteger(Uint8Array.of((n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff))

export function oid(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map(Number)
  const out: number[] = []
  const push = (n: number) => {
    const tmp = [n & 0x7f]
    n = Math.floor(n / 128)
    while (n > 0) {
      tmp.unshift((n & 0x7f) | 0x80)
      n = Math.floor(n / 128)
    }
    out.push(...tmp)
  }
  push(arcs[0]! * 40 + arcs[1]!)
  for (const a of arcs.slice(2)) push(a)
  return tlv(TAG.OID, Uint8Array.from(out))
}

/** UTCTime through 2049, GeneralizedTime from 2050, as RFC 5280 section 4.1.2.5 requires. */
export function time(d: Date): Uint8Array {
  const y = d.getUTCFullYear()
  if (y < 1950 || y > 9999) throw new RangeError(`date ${d.toISOString()} cannot be encoded`)
  const p = (n: number) => String(n).padStart(2, '0')
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`
  if (y < 2050) return tlv(TAG.UTC_TIME, new TextEncoder().encode(`${p(y % 100)}${rest}`))
  return tlv(TAG.GENERALIZED_TIME, new TextEncoder().encode(`${y}${rest}`))
}
