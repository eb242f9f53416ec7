import type { Entry } from '../storage.js'

/**
 * An entry decoded from a frame. Its data is a view into the frame made on access, so a follower's log holds
 * one small object per entry (not an object plus a typed-array view) until something reads the data. Each
 * read makes a new view: read `data` once where it is used, and {@link dataBytes} where only its size is.
 */
export class WireEntry implements Entry {
  constructor(
    readonly index: number,
    readonly term: number,
    readonly type: 0 | 1,
    private readonly frame: Uint8Array,
    private readonly offset: number,
    /** The length of `data`. */
    readonly length: number,
  ) {}
  get data(): Uint8Array {
    return this.frame.subarray(this.offset, this.offset + this.length)
  }
}

/**
 * The length of an entry's data, without making a view of a received frame for it (the byte budgets of
 * appends, of the apply queue and of uncommitted entries read only sizes).
 */
export function dataBytes(e: Entry): number {
  return e instanceof WireEntry ? e.length : e.data.length
}
