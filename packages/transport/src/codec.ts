import { Packr, Unpackr } from 'msgpackr'
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

/**
 * The msgpack codec (msgpackr) that the messaging layer uses. Binary values decode as copies
 * (`Uint8Array`s that do not keep the received frame alive). Each codec has its own decoder state,
 * so give each connection its own.
 */
export function messageCodec(options?: CodecOptions): Codec {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError('options must be an object')
  }
  const maxFrameBytes = positiveInt(options?.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, 'options.maxFrameBytes')
  const unpacker = new Unpackr({
    useRecords: false,
    mapsAsObjects: true,
    copyBuffers: true,
    structuredClone: false,
  })
  return {
    maxFrameBytes,
    encode(value: unknown): Uint8Array {
      let bytes: Uint8Array
      try {
        bytes = packer.pack(value)
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
    },
    decode(frame: Uint8Array): unknown {
      if (frame.byteLength > maxFrameBytes) {
        throw new TransportError(
          'FRAME_TOO_LARGE',
          `frame of ${frame.byteLength} bytes is over the limit of ${maxFrameBytes}`,
        )
      }
      if (frame.byteLength === 0) throw new TransportError('BAD_FRAME', 'empty frame')
      try {
        return unpacker.unpack(frame)
      } catch (cause) {
        throw new TransportError('BAD_FRAME', `undecodable frame: ${(cause as Error)?.message ?? cause}`, {
          cause,
        })
      }
    },
  }
}
