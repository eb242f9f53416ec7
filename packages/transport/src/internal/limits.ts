import type { FrameLimits } from '../types.js'

export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
export const DEFAULT_HIGH_WATER_MARK_BYTES = 1024 * 1024
export const DEFAULT_MAX_BUFFERED_BYTES = 16 * 1024 * 1024
/** The largest frame the 32-bit length prefix can carry that we accept at all. */
export const MAX_FRAME_BYTES_LIMIT = 1024 * 1024 * 1024

export interface ResolvedLimits {
  maxFrameBytes: number
  highWaterMarkBytes: number
  maxBufferedBytes: number
}

export function resolveLimits(limits: FrameLimits | undefined, where = 'options'): ResolvedLimits {
  const maxFrameBytes = positiveInt(limits?.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES, `${where}.maxFrameBytes`)
  if (maxFrameBytes > MAX_FRAME_BYTES_LIMIT) {
    throw new RangeError(`${where}.maxFrameBytes must be at most ${MAX_FRAME_BYTES_LIMIT}`)
  }
  const highWaterMarkBytes = positiveInt(
    limits?.highWaterMarkBytes,
    DEFAULT_HIGH_WATER_MARK_BYTES,
    `${where}.highWaterMarkBytes`,
  )
  const maxBufferedBytes = positiveInt(
    limits?.maxBufferedBytes,
    Math.max(DEFAULT_MAX_BUFFERED_BYTES, 2 * maxFrameBytes + 8, highWaterMarkBytes),
    `${where}.maxBufferedBytes`,
  )
  if (maxBufferedBytes < maxFrameBytes + 4) {
    throw new RangeError(`${where}.maxBufferedBytes must be larger than maxFrameBytes`)
  }
  if (maxBufferedBytes < highWaterMarkBytes) {
    throw new RangeError(`${where}.maxBufferedBytes must be at least highWaterMarkBytes`)
  }
  return { maxFrameBytes, highWaterMarkBytes, maxBufferedBytes }
}

export function positiveInt(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new RangeError(`${name} must be a positive integer`)
  }
  return value
}

export function nonNegative(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${name} must be a finite number >= 0`)
  }
  return value
}

export function checkAddress(address: unknown, name = 'address'): asserts address is string {
  if (typeof address !== 'string' || address.length === 0 || address.length > 1024) {
    throw new TypeError(`${name} must be a non-empty string`)
  }
}

export function checkFrame(frame: unknown): asserts frame is Uint8Array {
  if (!(frame instanceof Uint8Array)) throw new TypeError('frame must be a Uint8Array')
}
