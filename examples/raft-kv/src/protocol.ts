// The client protocol of raft-kv: length-prefixed binary frames over TCP, many requests in flight per
// connection, answered in any order and matched by id. Little-endian:
//   frame    = length u32 (of what follows) | body
//   request  = id u32 | op u8 (1 put, 2 get) | keyLength u16 | key (utf-8) | value (put only)
//   response = id u32 | status u8 | payload
//     status 0 (ok):        put: index f64 | get: value
//     status 1 (not found): get only, empty payload
//     status 2 (error):     code (utf-8, up to 32 bytes) | 0 | message (utf-8)

export const OP_PUT = 1
export const OP_GET = 2
export const STATUS_OK = 0
export const STATUS_NOT_FOUND = 1
export const STATUS_ERROR = 2
/** Largest frame either side accepts. */
export const MAX_FRAME = 4 << 20

const enc = new TextEncoder()
const dec = new TextDecoder()

export interface Request {
  id: number
  op: number
  key: string
  value: Uint8Array
}

export function encodeRequest(id: number, op: number, key: string, value?: Uint8Array): Buffer {
  const k = enc.encode(key)
  const v = value ?? new Uint8Array(0)
  const body = 4 + 1 + 2 + k.length + v.length
  const out = Buffer.allocUnsafe(4 + body)
  out.writeUInt32LE(body, 0)
  out.writeUInt32LE(id >>> 0, 4)
  out[8] = op
  out.writeUInt16LE(k.length, 9)
  out.set(k, 11)
  out.set(v, 11 + k.length)
  return out
}

export function decodeRequest(body: Buffer): Request {
  if (body.length < 7) throw new Error('short request')
  const id = body.readUInt32LE(0)
  const op = body[4]!
  const kl = body.readUInt16LE(5)
  if (7 + kl > body.length || (op !== OP_PUT && op !== OP_GET)) throw new Error('malformed request')
  return { id, op, key: body.toString('utf8', 7, 7 + kl), value: body.subarray(7 + kl) }
}

export function encodeResponse(id: number, status: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + 5 + payload.length)
  out.writeUInt32LE(5 + payload.length, 0)
  out.writeUInt32LE(id >>> 0, 4)
  out[8] = status
  out.set(payload, 9)
  return out
}

/** A put's answer: `encodeResponse(id, STATUS_OK, encodeIndex(index))` in one buffer. */
export function encodeIndexResponse(id: number, index: number): Buffer {
  const out = Buffer.allocUnsafe(4 + 5 + 8)
  out.writeUInt32LE(5 + 8, 0)
  out.writeUInt32LE(id >>> 0, 4)
  out[8] = STATUS_OK
  out.writeDoubleLE(index, 9)
  return out
}

export function encodeIndex(index: number): Buffer {
  const b = Buffer.allocUnsafe(8)
  b.writeDoubleLE(index, 0)
  return b
}

export function encodeError(code: string, message: string): Uint8Array {
  return enc.encode(`${code.slice(0, 32)}\0${message}`)
}

export function decodeError(payload: Uint8Array): { code: string; message: string } {
  const text = dec.decode(payload)
  const cut = text.indexOf('\0')
  return cut < 0
    ? { code: 'ERROR', message: text }
    : { code: text.slice(0, cut), message: text.slice(cut + 1) }
}

/** Splits a byte stream into frame bodies, refusing frames over `max`. */
export class FrameReader {
  #buf: Buffer = Buffer.alloc(0)
  constructor(readonly max = MAX_FRAME) {}

  /** Feeds `chunk`; calls `onFrame` for each complete body. Throws on an oversized frame. */
  push(chunk: Buffer, onFrame: (body: Buffer) => void): void {
    let buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
    let off = 0
    while (buf.length - off >= 4) {
      const len = buf.readUInt32LE(off)
      if (len > this.max) throw new Error(`frame of ${len} bytes is over the limit of ${this.max}`)
      if (buf.length - off - 4 < len) break
      onFrame(buf.subarray(off + 4, off + 4 + len))
      off += 4 + len
    }
    buf = buf.subarray(off)
    this.#buf = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf)
  }
}
