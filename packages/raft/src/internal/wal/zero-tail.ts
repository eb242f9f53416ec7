// Preallocated space at the end of the segment being written: zeros written ahead of the records, in the
// background. An O_DSYNC write that appends to a file also commits the file's new size through ext4's journal;
// a write into space already written does not (one 300-byte record on the bench's disk: 0.12 against 0.15-0.18
// ms at p50, 50-60 against 60-90 µs of CPU). The zeros are written in windows of `window` bytes, each one while
// the records still go into the one before, so a fill is never on a save's path.
//
// What is on disk stays what recovery has always read: a run of records, then (in the last segment only)
// anything that is not a valid record. Zeros after the records read as a torn tail and are cut at open
// (scan.ts), as a write cut short by a power cut is. The rules that keep it so:
// - a fill writes only past the end of everything written (records and zeros), and records go past the zeros
//   already durable only once no fill is running (`mustSettle`): no two writes in flight ever overlap;
// - a segment is cut back to the end of its records before another segment follows it (`FileLogStorage`'s
//   roll and reseal), since every segment but the last must be records to its end;
// - nothing truncates, closes or reopens the file while a fill runs (`settle` first).
import { Buffer } from 'node:buffer'
import { type FileSystem, writeAll } from '../../file-system.js'
import { isNoSpace } from './no-space.js'

export class ZeroTail {
  readonly #files: FileSystem
  readonly #window: number
  /** What the window is written from (zeros; `window` bytes, allocated at the first fill). */
  #zeros: Buffer | null = null
  #fd = -1
  /** The file holds durable bytes (records, then zeros) up to here. */
  #durable = 0
  /** Past the end of anything written to the file, fills in flight included. */
  #end = 0
  #filling: Promise<void> | null = null
  /** A fill found the disk full: no more in this segment (records simply append). */
  #full = false
  /** A fill failed otherwise: what the file holds is unknown (a failed O_DSYNC write), the log must stop. */
  #failure: unknown = null

  /** `window` bytes of zeros are kept ahead of the records (0: none). */
  constructor(files: FileSystem, window: number) {
    this.#files = files
    this.#window = window
  }

  /** Whether the file may hold anything past the records' end `recordsEnd` (zeros to cut off). */
  beyond(recordsEnd: number): boolean {
    return this.#end > recordsEnd
  }

  /** Starts over on segment `fd`, whose records end at `size` and which holds nothing past them. */
  reset(fd: number, size: number): void {
    if (this.#filling) throw new Error('ZeroTail.reset while a fill is running')
    this.#fd = fd
    this.#durable = size
    this.#end = size
    this.#full = false
  }

  /**
   * Whether records written up to `to` must first `settle()`: a fill in flight would overlap them (they reach
   * past the zeros already durable), or a fill failed.
   */
  mustSettle(to: number): boolean {
    return (this.#filling !== null && to > this.#durable) || this.#failure !== null
  }

  /** Call after records were written up to `to` (durably). */
  wrote(to: number): void {
    if (to > this.#durable) this.#durable = to
    if (to > this.#end) this.#end = to
  }

  /**
   * Starts a fill of the next window (up to `limit`, the segment's size) once less than half a window of zeros
   * is left after the records' end `recordsEnd`. Does not wait for it.
   */
  extend(recordsEnd: number, limit: number): void {
    if (this.#window === 0 || this.#filling || this.#full || this.#failure !== null) return
    if (this.#durable - recordsEnd >= this.#window / 2) return
    const from = this.#end
    const to = Math.min(from + this.#window, limit)
    if (to <= from) return
    this.#zeros ??= Buffer.alloc(this.#window)
    const fd = this.#fd
    this.#end = to
    this.#filling = writeAll(this.#files, fd, [this.#zeros.subarray(0, to - from)], from).then(
      () => {
        this.#filling = null
        if (this.#fd === fd) this.#durable = to
      },
      (e: unknown) => {
        this.#filling = null
        if (isNoSpace(e)) this.#full = true
        else this.#failure = e
      },
    )
  }

  /** Waits for the fill in flight; throws when a fill failed (not for a full disk). */
  async settle(): Promise<void> {
    if (this.#filling) await this.#filling
    if (this.#failure !== null) throw this.#failure
  }
}
