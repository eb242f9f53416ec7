// The DNS wire format, as much as the embedded resolver needs: a query's header and its one question
// decoded with hard limits (RFC 1035 sizes, a bounded number of compression jumps), and answers encoded.
// Everything arriving here came from a task's packet: nothing is trusted, every read is bounds-checked, and
// a malformed message is a `DnsFormatError`, never an exception of another kind.

/** Record types the resolver answers itself; any other type is forwarded. */
export const DNS_TYPE = { A: 1, CNAME: 5, PTR: 12, AAAA: 28, OPT: 41 } as const
export const DNS_CLASS_IN = 1
/** Response codes. */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const

/** Largest DNS message accepted over UDP or TCP (the TCP length prefix is 16 bits). */
export const DNS_MAX_MESSAGE = 65535
const MAX_NAME = 255
const MAX_LABEL = 63
const MAX_JUMPS = 16

/** A message that is not valid DNS. */
export class DnsFormatError extends Error {
  override readonly name = 'DnsFormatError'
}

/** The one question of a DNS query (RFC 1035 §4.1.2). */
export interface DnsQuestion {
  /** Lowercased, without the trailing dot (`''` is the root). */
  name: string
  type: number
  class: number
}

/** A decoded DNS query: the header fields an answer echoes and its single question. */
export interface DnsQuery {
  id: number
  /** The RD bit, echoed in the answer. */
  recursionDesired: boolean
  opcode: number
  question: DnsQuestion
  /** Bytes of the header and the question, as sent (echoed in the answer). */
  questionEnd: number
  /** The largest UDP answer the client takes: 512, or its EDNS payload size (at most 4096). */
  udpSize: number
}

/** The fixed 12-byte DNS message header (RFC 1035 §4.1.1). */
export interface DnsHeader {
  id: number
  response: boolean
  opcode: number
  rcode: number
  qdcount: number
  ancount: number
  nscount: number
  arcount: number
}

/** Reads the 12-byte header. */
export function decodeHeader(msg: Uint8Array): DnsHeader {
  if (!(msg instanceof Uint8Array)) throw new TypeError('msg must be a Uint8Array')
  if (msg.length < 12) throw new DnsFormatError('message shorter than a DNS header')
  if (msg.length > DNS_MAX_MESSAGE) throw new DnsFormatError('message longer than 65535 bytes')
  const u16 = (o: number) => (msg[o]! << 8) | msg[o + 1]!
  return {
    id: u16(0),
    response: (msg[2]! & 0x80) !== 0,
    opcode: (msg[2]! >> 3) & 0x0f,
    rcode: msg[3]! & 0x0f,
    qdcount: u16(4),
    ancount: u16(6),
    nscount: u16(8),
    arcount: u16(10),
  }
}

/** Reads a (possibly compressed) name at `offset`; returns it and the offset just past it in place. */
export function decodeName(msg: Uint8Array, offset: number): { name: string; end: number } {
  const labels: string[] = []
  let length = 0
  let pos = offset
  let end = -1
  let jumps = 0
  for (;;) {
    if (pos >= msg.length) throw new DnsFormatError('name runs past the end of the message')
    const len = msg[pos]!
    if (len === 0) {
      if (end < 0) end = pos + 1
      break
    }
    const kind = len & 0xc0
    if (kind === 0xc0) {
      if (pos + 1 >= msg.length) throw new DnsFormatError('compression pointer runs past the end')
      if (++jumps > MAX_JUMPS) throw new DnsFormatError('too many compression pointers')
      if (end < 0) end = pos + 2
      const target = ((len & 0x3f) << 8) | msg[pos + 1]!
      if (target >= pos) throw new DnsFormatError('compression pointer does not point backwards')
      pos = target
      continue
    }
    if (kind !== 0) throw new DnsFormatError('unknown label type')
    if (len > MAX_LABEL) throw new DnsFormatError('label longer than 63 bytes')
    if (pos + 1 + len > msg.length) throw new DnsFormatError('label runs past the end of the message')
    length += len + 1
    if (length > MAX_NAME) throw new DnsFormatError('name longer than 255 bytes')
    let label = ''
    for (let i = pos + 1; i <= pos + len; i++) {
      const c = msg[i]!
      // Names are matched as lowercase ASCII; other bytes are kept escaped so they never match a record.
      if (c >= 0x41 && c <= 0x5a) label += String.fromCharCode(c + 32)
      else if (c > 0x20 && c < 0x7f && c !== 0x2e && c !== 0x5c) label += String.fromCharCode(c)
      else label += `\\${c.toString().padStart(3, '0')}`
    }
    labels.push(label)
    pos += 1 + len
  }
  return { name: labels.join('.'), end }
}

/**
 * Decodes a query: a header with QR clear, exactly one question, and no answer or authority records (the
 * additional section may hold EDNS options, which are ignored). Throws `DnsFormatError` on anything else.
 */
export function decodeQuery(msg: Uint8Array): DnsQuery {
  const h = decodeHeader(msg)
  if (h.response) throw new DnsFormatError('message is a response, not a query')
  if (h.qdcount !== 1) throw new DnsFormatError(`query has ${h.qdcount} questions (1 expected)`)
  if (h.ancount !== 0 || h.nscount !== 0) throw new DnsFormatError('query carries answer records')
  if (h.arcount > 1) throw new DnsFormatError('query carries more than one additional record')
  const { name, end } = decodeName(msg, 12)
  if (end + 4 > msg.length) throw new DnsFormatError('question runs past the end of the message')
  let udpSize = 512
  const q = end + 4
  // An EDNS OPT record (root name, type 41): its class is the client's UDP payload size.
  if (h.arcount === 1 && q + 11 <= msg.length && msg[q] === 0 && ((msg[q + 1]! << 8) | msg[q + 2]!) === 41)
    udpSize = Math.min(4096, Math.max(512, (msg[q + 3]! << 8) | msg[q + 4]!))
  return {
    id: h.id,
    udpSize,
    recursionDesired: (msg[2]! & 0x01) !== 0,
    opcode: h.opcode,
    question: { name, type: (msg[end]! << 8) | msg[end + 1]!, class: (msg[end + 2]! << 8) | msg[end + 3]! },
    questionEnd: end + 4,
  }
}

/** One answer record: an address (A or AAAA, by the address's family) or a name (PTR, CNAME). */
export interface DnsAnswer {
  type: number
  /** TTL in seconds. */
  ttl: number
  /** The raw RDATA: 4 or 16 address bytes, or an encoded name. */
  data: Uint8Array
}

/** Encodes a name as labels (no compression). Throws `DnsFormatError` if it cannot be one. */
export function encodeName(name: string): Uint8Array {
  const labels = name === '' ? [] : name.replace(/\.$/, '').split('.')
  const out: number[] = []
  for (const l of labels) {
    const bytes = new TextEncoder().encode(l)
    if (bytes.length === 0 || bytes.length > MAX_LABEL) throw new DnsFormatError(`bad label in ${name}`)
    out.push(bytes.length, ...bytes)
  }
  out.push(0)
  if (out.length > MAX_NAME) throw new DnsFormatError('name longer than 255 bytes')
  return Uint8Array.from(out)
}

/**
 * A response to `query` (header and question copied from the query's bytes), with these answers, each
 * owned by the question's name (a compression pointer to offset 12). AA and RA set, RD echoed.
 */
export function encodeResponse(
  queryBytes: Uint8Array,
  query: DnsQuery,
  rcode: number,
  answers: DnsAnswer[] = [],
): Uint8Array {
  let size = query.questionEnd
  for (const a of answers) size += 12 + a.data.length
  const out = new Uint8Array(size)
  out.set(queryBytes.subarray(0, query.questionEnd))
  out[2] = 0x80 | (query.opcode << 3) | 0x04 | (query.recursionDesired ? 1 : 0)
  out[3] = 0x80 | (rcode & 0x0f)
  out[4] = 0
  out[5] = 1
  out[6] = answers.length >> 8
  out[7] = answers.length & 0xff
  out.fill(0, 8, 12)
  let o = query.questionEnd
  for (const a of answers) {
    out[o++] = 0xc0
    out[o++] = 12
    out[o++] = a.type >> 8
    out[o++] = a.type & 0xff
    out[o++] = 0
    out[o++] = DNS_CLASS_IN
    out[o++] = (a.ttl >>> 24) & 0xff
    out[o++] = (a.ttl >>> 16) & 0xff
    out[o++] = (a.ttl >>> 8) & 0xff
    out[o++] = a.ttl & 0xff
    out[o++] = a.data.length >> 8
    out[o++] = a.data.length & 0xff
    out.set(a.data, o)
    o += a.data.length
  }
  return out
}

/** A minimal error response when the query cannot be decoded past its header (FORMERR, no question). */
export function encodeFailure(id: number, rcode: number): Uint8Array {
  const out = new Uint8Array(12)
  out[0] = id >> 8
  out[1] = id & 0xff
  out[2] = 0x80
  out[3] = 0x80 | (rcode & 0x0f)
  return out
}

/**
 * Sets the TC bit and drops every record of a response too large for a UDP answer of `limit` bytes, keeping
 * the header and question (the client then retries over TCP, RFC 7766).
 */
export function truncate(response: Uint8Array, query: DnsQuery, limit: number): Uint8Array {
  if (response.length <= limit) return response
  const out = response.slice(0, query.questionEnd)
  out[2] = out[2]! | 0x02
  out.fill(0, 6, 12)
  return out
}
