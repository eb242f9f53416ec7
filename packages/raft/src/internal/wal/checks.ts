// Argument checks of FileLogStorage (argument errors name the argument) and its I/O error.
import { Buffer } from 'node:buffer'
import { RaftError } from '../../errors.js'
import type { FileLogStorageOptions } from '../../file-storage-options.js'
import type { HardState } from '../../storage.js'
import { MAX_TAG_BYTES, MAX_VOTE_BYTES } from './format.js'

const MiB = 1 << 20

export function ioError(what: string, cause: unknown): RaftError {
  return new RaftError('IO', `${what}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
}

export function checkSignal(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason ?? new DOMException('This operation was aborted', 'AbortError')
}

export function checkCount(value: unknown, name: string, min = 0): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${String(value)}`)
  }
  return value
}

export function checkHardState(hs: unknown, name: string): HardState {
  if (typeof hs !== 'object' || hs === null) throw new TypeError(`${name} must be an object`)
  const h = hs as HardState
  checkCount(h.term, `${name}.term`)
  checkCount(h.commit, `${name}.commit`)
  if (h.vote !== null && (typeof h.vote !== 'string' || h.vote.length === 0)) {
    throw new TypeError(`${name}.vote must be a non-empty string or null`)
  }
  if (h.vote !== null && Buffer.byteLength(h.vote) > MAX_VOTE_BYTES) {
    throw new RangeError(`${name}.vote is longer than ${MAX_VOTE_BYTES} bytes`)
  }
  return { term: h.term, vote: h.vote, commit: h.commit }
}

/** Checks `open`'s arguments, in a fixed order (the first mistake is the one reported). */
export function checkOpenArguments(dir: unknown, options: FileLogStorageOptions): void {
  if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('dir must be a non-empty string')
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  for (const key of ['nodeId', 'clusterId'] as const) {
    const v = options[key]
    if (v !== undefined && (typeof v !== 'string' || v.length === 0 || v.length > 256)) {
      throw new TypeError(`options.${key} must be a non-empty string of at most 256 characters`)
    }
  }
  if (options.segmentBytes !== undefined) checkCount(options.segmentBytes, 'options.segmentBytes', 1024)
  if (options.maxEntryBytes !== undefined) checkCount(options.maxEntryBytes, 'options.maxEntryBytes', 1)
  if (options.maxSnapshotBytes !== undefined) {
    checkCount(options.maxSnapshotBytes, 'options.maxSnapshotBytes', 1)
    if (options.maxSnapshotBytes > 2 * 1024 * MiB)
      throw new RangeError('options.maxSnapshotBytes is over 2 GiB')
  }
  if ((options.seal === undefined) !== (options.open === undefined)) {
    throw new TypeError('options.seal and options.open go together: give both or neither')
  }
  for (const key of ['seal', 'open'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'function') {
      throw new TypeError(`options.${key} must be a function`)
    }
  }
  if (
    options.sealTagBytes !== undefined &&
    (!Number.isSafeInteger(options.sealTagBytes) ||
      options.sealTagBytes < 1 ||
      options.sealTagBytes > MAX_TAG_BYTES)
  ) {
    throw new RangeError(`options.sealTagBytes must be an integer from 1 to ${MAX_TAG_BYTES}`)
  }
  const kos = options.keepOldSnapshots
  if (kos !== undefined && (!Number.isSafeInteger(kos) || kos < 0)) {
    throw new RangeError('options.keepOldSnapshots must be an integer >= 0')
  }
  const miw = options.maxInlineWriteMs
  if (miw !== undefined && (typeof miw !== 'number' || !(miw >= 0))) {
    throw new RangeError('options.maxInlineWriteMs must be a number >= 0')
  }
  if (options.preallocateBytes !== undefined) {
    checkCount(options.preallocateBytes, 'options.preallocateBytes')
    if (options.preallocateBytes > 64 * MiB) throw new RangeError('options.preallocateBytes is over 64 MiB')
  }
  if (options.batchSeal !== undefined && typeof options.batchSeal !== 'boolean') {
    throw new TypeError('options.batchSeal must be a boolean')
  }
  checkSignal(options.signal)
}
