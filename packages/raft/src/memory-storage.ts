import type {
  Entry,
  HardState,
  LogStorage,
  PersistedState,
  SaveOptions,
  Snapshot,
  StorageUpdate,
} from './storage.js'

const EMPTY_HARD: HardState = { term: 0, vote: null, commit: 0 }

/**
 * LogStorage in memory. "Durable" here means: survives a RaftNode being stopped and a new one started on the
 * same MemoryLogStorage object (not the process). Entries are kept by reference; they are immutable.
 */
export class MemoryLogStorage implements LogStorage {
  private hard: HardState = EMPTY_HARD
  private snap: Snapshot | null = null
  /** entries[i].index === offset + 1 + i */
  private entries: Entry[] = []
  private offset = 0

  async load(_options?: { signal?: AbortSignal }): Promise<PersistedState> {
    const snapIndex = this.snap?.meta.index ?? 0
    const from = Math.max(0, snapIndex - this.offset)
    return { hardState: this.hard, snapshot: this.snap, entries: this.entries.slice(from) }
  }

  async save(update: StorageUpdate, _options?: SaveOptions): Promise<void> {
    this.apply(update)
  }

  /** The synchronous core of `save`, for drivers and tests that want no await. */
  apply(update: StorageUpdate): void {
    if (update === null || typeof update !== 'object') throw new TypeError('update must be an object')
    const { snapshot, entries, hardState } = update
    if (snapshot) {
      const idx = snapshot.meta.index
      const last = this.offset + this.entries.length
      const stored = idx > this.offset && idx <= last ? this.entries[idx - this.offset - 1]!.term : -1
      if (stored !== snapshot.meta.term) {
        // Newer than (or in conflict with) the stored log: the log restarts after the snapshot.
        this.entries = []
        this.offset = idx
      }
      this.snap = snapshot
    }
    if (entries && entries.length > 0) {
      const first = entries[0]!.index
      const last = this.offset + this.entries.length
      if (first > last + 1) throw new RangeError(`entries start at ${first} but the log ends at ${last}`)
      if (first <= this.offset) throw new RangeError(`entries start at ${first}, at or below ${this.offset}`)
      for (let i = 1; i < entries.length; i++) {
        if (entries[i]!.index !== first + i)
          throw new RangeError(`entries[${i}] does not follow entries[${i - 1}]`)
      }
      if (first <= last) this.entries.length = first - this.offset - 1
      for (let i = 0; i < entries.length; i++) this.entries.push(entries[i]!)
    }
    if (hardState) this.hard = hardState
  }

  async snapshot(_options?: { signal?: AbortSignal }): Promise<Snapshot | null> {
    return this.snap
  }

  async compact(index: number, _options?: { signal?: AbortSignal }): Promise<void> {
    if (!Number.isSafeInteger(index) || index < 0)
      throw new RangeError('index must be a non-negative integer')
    const snapIndex = this.snap?.meta.index ?? 0
    if (index > snapIndex)
      throw new RangeError(`cannot compact to ${index}, beyond the snapshot at ${snapIndex}`)
    if (index <= this.offset) return
    this.entries = this.entries.slice(index - this.offset)
    this.offset = index
  }

  async close(): Promise<void> {}

  /** Index of the last stored entry (tests and tools). */
  lastIndex(): number {
    return this.offset + this.entries.length
  }
}
