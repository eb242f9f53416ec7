import { Packr, RESET_BUFFER_MODE, Unpackr } from 'msgpackr'
import { TransportError } from './errors.js'
import { DEFAULT_MAX_FRAME_BYTES, positiveInt } from './internal/limits.js'

/** Encodes values to frames and back. */
export interface Codec {
  /** Throws `FRAME_TOO_LARGE` when the encoding is over `maxFrameBytes`. */
  encode(value: unknown): Uint8Array
  /** Throws `BAD_FRAME` for anything that is not exactly one well-formed value, `FRAME_TOO_LARGE` when too big. */
  decode(frame: Uint8Array): unknown
  readonly maxFrameBytes: number
}

/** Options of {@link messageCodec}. */
export interface CodecOptions {
  /** Largest encoded value in bytes, both ways (default 4 MiB). */
  readonly maxFrameBytes?: number | undefined
}

// Packing reads no peer state, so one packer serves everything. It never emits records (structures),
// so frames are self-contained.
const packer = new Packr({ useRecords: false, moreTypes: false })

// Binary values are decoded as views of the frame, then copied out (see `detach`) so that they do not
// keep the received chunk (up to 256 KiB) alive. Those up to 4 KiB go into shared 32 KiB slabs, the way
// Node's Buffer pool works: one allocation per slab instead of one ArrayBuffer per value. A kept value
// keeps at most its slab alive.
const SLAB_BYTES = 32 * 1024
const SMALL_BINARY = 4 * 1024
let slab = new ArrayBuffer(SLAB_BYTES)
let slabUsed = 0

function copyBinary(view: Uint8Array): Uint8Array {
  const n = view.byteLength
  if (n > SMALL_BINARY) return new Uint8Array(view) // a copy
  if (slabUsed + n > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES)
    slabUsed = 0
  }
  const out = new Uint8Array(slab, slabUsed, n)
  out.set(view)
  slabUsed += (n + 7) & ~7
  return out
}

/**
 * Replace every binary inside a decoded value by a copy (in place; values are fresh from the decoder),
 * and refuse types outside the codec's contract (msgpackr also knows RegExp, Error, typed arrays...):
 * a peer cannot hand a handler anything but plain data.
 */
function detach(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value
  if (value instanceof Uint8Array) {
    if (value.constructor !== Uint8Array && value.constructor !== Buffer) throw unsupported(value)
    return copyBinary(value)
  }
  if (depth > 256) throw new TransportError('BAD_FRAME', 'value nested too deeply')
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i]
      if (typeof v === 'object' && v !== null) value[i] = detach(v, depth + 1)
    }
    return value
  }
  const proto = Object.getPrototypeOf(value)
  if (proto === Object.prototype || proto === null) {
    const o = value as Record<string, unknown>
    for (const k in o) {
      const v = o[k]
      if (typeof v === 'object' && v !== null) o[k] = detach(v, depth + 1)
    }
    return value
  }
  if (value instanceof Map) {
    for (const [k, v] of value) if (typeof v === 'object' && v !== null) value.set(k, detach(v, depth + 1))
    return value
  }
  if (value instanceof Set) {
    const items = [...value].map((v) => detach(v, depth + 1))
    value.clear()
    for (const v of items) value.add(v)
    return value
  }
  if (value instanceof Date) return value
  throw unsupported(value)
}

function unsupported(value: object): TransportError {
  return new TransportError(
    'BAD_FRAME',
    `unsupported type in message: ${value.constructor?.name ?? 'unknown'}`,
  )
}

let grown = false
/**
 * msgpackr encodes into a shared buffer and starts a new one of the same size when fewer than 2 KiB
 * are left; its first is 8 KiB, so 1 KiB messages cost a fresh allocation every few messages. One large
 * encoding makes the buffers it allocates from then on 256 KiB.
 */
function growPackBuffer(): void {
  if (grown) return
  grown = true
  packer.pack(new Uint8Array(256 * 1024))
}

/**
 * The msgpack codec (msgpackr) that the messaging layer uses. It carries null, undefined, booleans,
 * numbers, 64-bit bigints, strings, `Uint8Array`s, arrays, plain objects, Sets and Dates (Maps arrive
 * as plain objects); a frame with
 * anything else (msgpackr's RegExp, Error or typed-array extensions) is refused as `BAD_FRAME`. Binary
 * values decode as copies (`Uint8Array`s that do not keep the received frame alive). Each codec has its own decoder state,
 * so give each connection its own.
 */
export function messageCodec(options?: CodecOptions): Codec {
  return createCodec(options)
}

/** The codec with an extra, internal method for the session's hot path. */
export interface InternalCodec extends Codec {
  /**
   * Encode into msgpackr's shared buffer and let the next encoding (anyone's) reuse that memory: the
   * result must be copied before anything else is encoded. No allocation per message.
   */
  encodeTransient(value: unknown): Uint8Array
}

/** @internal */
export function createCodec(options?: CodecOptions): InternalCodec {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError('options must be an object')
  }
  const maxFrameBytes = positiveInt(options?.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 'options.maxFrameBytes')
  growPackBuffer()
  const unpacker = new Unpackr({
    useRecords: false,
    mapsAsObjects: true,
    copyBuffers: false,
    structuredClone: false,
  })
  let lastMemory: ArrayBuffer | undefined
  let lastView: Uint8Array | undefined
  const checked = (value: unknown, mode: number): Uint8Array => {
    let bytes: Uint8Array
    try {
      bytes = packer.pack(value, mode)
    } catch (cause) {
      throw new TypeError(`value cannot be encoded: ${(cause as Error).message}`)
    }
    if (bytes.byteLength > maxFrameBytes) {
      throw new TransportError(
        'FRAME_TOO_LARGE',
        `encoded message of ${bytes.byteLength} bytes is over the limit of ${maxFrameBytes}`,
      )
    }
    return bytes
  }
  return {
    maxFrameBytes,
    encode(value: unknown): Uint8Array {
      return checked(value, 0)
    },
    encodeTransient(value: unknown): Uint8Array {
      return checked(value, RESET_BUFFER_MODE)
    },
    decode(frame: Uint8Array): unknown {
      if (frame.byteLength > maxFrameBytes) {
        throw new TransportError(
          'FRAME_TOO_LARGE',
          `frame of ${frame.byteLength} bytes is over the limit of ${maxFrameBytes}`,
        )
      }
      if (frame.byteLength === 0) throw new TransportError('BAD_FRAME', 'empty frame')
      // Frames cut from one received chunk share its memory: decode them through one view of the whole
      // buffer (msgpackr caches a DataView per source), instead of a new view per frame.
      const memory = frame.buffer as ArrayBuffer
      if (memory !== lastMemory) {
        lastMemory = memory
        lastView = new Uint8Array(memory)
      }
      try {
        return detach(
          unpacker.unpack(lastView!, { start: frame.byteOffset, end: frame.byteOffset + frame.byteLength }),
          0,
        )
      } catch (cause) {
        if (cause instanceof TransportError) throw cause
        throw new TransportError('BAD_FRAME', `undecodable frame: ${(cause as Error)?.message ?? cause}`, {
          cause,
        })
      }
    },
  }
}
