// A Ready's write on a full disk. Storage that refuses a save with NO_SPACE kept nothing of it and takes it
// again later, so the node stays up and in its role: it writes the same update again with backoff until the
// disk takes it, and meanwhile answers proposals with NO_SPACE instead of letting them wait for a log that
// cannot grow. Votes and acknowledgements wait with the write (they promise what it holds); messages that need
// no write (heartbeats, the leader's appends) go on. Any other storage failure is still fatal.
import { isRaftError, RaftError } from '../errors.js'
import type { LogStorage, StorageUpdate } from '../storage.js'

/** The first wait before a refused write goes again; it doubles up to the last. */
export const FIRST_RETRY_MS = 25
export const MAX_RETRY_MS = 500
const INLINE = { inline: true } as const

export interface FullDiskHost {
  readonly storage: LogStorage
  readonly clock: {
    setTimeout(fn: () => void, ms: number): unknown
    clearTimeout(handle: unknown): void
  }
  running(): boolean
  /** The disk was found full (the first refusal since a write went through). */
  onFull(err: RaftError): void
  /** A write went through after the disk was full. */
  onSpace(): void
}

export class FullDisk {
  /** The last refusal, while no write went through since it. */
  private refused: RaftError | null = null
  private timer: unknown = undefined
  private wake: (() => void) | null = null

  constructor(private readonly host: FullDiskHost) {}

  /** Whether the disk was full at the last write. */
  get full(): boolean {
    return this.refused !== null
  }

  /**
   * The error a proposal gets while the disk is full, or null. `neverProposed`: the proposal is refused before
   * it reached a log (not one in flight, which may still commit).
   */
  refusal(neverProposed = false): RaftError | null {
    const r = this.refused
    return (
      r &&
      new RaftError('NO_SPACE', `this node's log cannot grow for now: ${r.message}`, {
        cause: r,
        neverProposed,
      })
    )
  }

  /**
   * Saves `update`, again and again while the disk is full; rejects on any other failure, or once stopped.
   * `inline`: the caller waits for nothing else (see `SaveOptions.inline`).
   */
  async save(update: StorageUpdate, inline = false): Promise<void> {
    const host = this.host
    let wait = FIRST_RETRY_MS
    for (;;) {
      try {
        await host.storage.save(update, inline ? INLINE : undefined)
      } catch (err) {
        if (!isRaftError(err, 'NO_SPACE') || !host.running()) throw err
        const first = this.refused === null
        this.refused = err
        if (first) host.onFull(err)
        await this.sleep(wait)
        if (!host.running()) throw new RaftError('STOPPED', 'the raft node stopped while its disk was full')
        wait = Math.min(2 * wait, MAX_RETRY_MS)
        continue
      }
      if (this.refused !== null) {
        this.refused = null
        host.onSpace()
      }
      return
    }
  }

  /** Ends a wait between two tries at once (the node is stopping). */
  stop(): void {
    if (this.timer !== undefined) this.host.clock.clearTimeout(this.timer)
    this.timer = undefined
    this.wake?.()
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = () => {
        this.wake = null
        this.timer = undefined
        resolve()
      }
      this.timer = this.host.clock.setTimeout(() => this.wake?.(), ms)
    })
  }
}
