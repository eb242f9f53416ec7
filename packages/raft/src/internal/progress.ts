/** How the leader replicates to one peer. */
export const ProgressState = {
  /** Unsure where the follower's log matches: one append per heartbeat interval until it answers. */
  Probe: 0,
  /** Known match: appends are pipelined, bounded by the in-flight limits. */
  Replicate: 1,
  /** A snapshot is being sent; appends wait until the follower answers or the transfer fails. */
  Snapshot: 2,
} as const
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState]

/** A ring of in-flight appends (last index and bytes of each), bounded in count and bytes. */
export class Inflights {
  private readonly idx: number[]
  private readonly bytes: number[]
  private start = 0
  count = 0
  totalBytes = 0

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {
    this.idx = new Array(maxCount).fill(0)
    this.bytes = new Array(maxCount).fill(0)
  }

  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.totalBytes >= this.maxBytes)
  }

  add(index: number, bytes: number): void {
    const at = (this.start + this.count) % this.maxCount
    this.idx[at] = index
    this.bytes[at] = bytes
    this.count++
    this.totalBytes += bytes
  }

  /** Frees every in-flight append whose last index is <= `index`. */
  freeLE(index: number): void {
    while (this.count > 0 && this.idx[this.start]! <= index) {
      this.totalBytes -= this.bytes[this.start]!
      this.start = (this.start + 1) % this.maxCount
      this.count--
    }
    if (this.count === 0) {
      this.start = 0
      this.totalBytes = 0
    }
  }

  reset(): void {
    this.start = 0
    this.count = 0
    this.totalBytes = 0
  }
}

/** The leader's view of one member. */
export class Progress {
  match = 0
  next = 1
  state: ProgressState = ProgressState.Probe
  /** In Probe: an append is out and unanswered; wait for its answer or the next heartbeat. */
  probeSent = false
  /** Heard from since the last CheckQuorum round. */
  recentActive = false
  /** The commit index last sent to this peer. */
  sentCommit = 0
  /** The leader tick at which the newest heartbeat this peer acknowledged was sent (lease reads). */
  ackedTick = Number.NEGATIVE_INFINITY
  /** The leader tick of the last append answer from this peer (detects appends lost in Replicate). */
  appendAckTick = 0
  readonly inflights: Inflights

  constructor(
    readonly id: string,
    public isLearner: boolean,
    maxInflight: number,
    maxInflightBytes: number,
  ) {
    this.inflights = new Inflights(maxInflight, maxInflightBytes)
  }

  /** The leader tick at which this peer last answered anything (-1: never). */
  lastHeard = -1
  /** The index of the snapshot being sent (Snapshot state). */
  pendingSnapshot = 0

  isPaused(): boolean {
    if (this.state === ProgressState.Snapshot) return true
    return this.state === ProgressState.Probe ? this.probeSent : this.inflights.full()
  }

  becomeSnapshot(index: number): void {
    this.state = ProgressState.Snapshot
    this.probeSent = false
    this.inflights.reset()
    this.pendingSnapshot = index
  }

  becomeProbe(): void {
    this.state = ProgressState.Probe
    this.probeSent = false
    this.inflights.reset()
    this.next = this.match + 1
  }

  becomeReplicate(): void {
    this.state = ProgressState.Replicate
    this.probeSent = false
    this.inflights.reset()
    this.next = this.match + 1
  }

  /** A successful append answer for `n`: returns whether `match` moved. */
  maybeUpdate(n: number): boolean {
    let updated = false
    if (this.match < n) {
      this.match = n
      updated = true
      this.probeSent = false
    }
    if (this.next < n + 1) this.next = n + 1
    return updated
  }

  /**
   * A rejection of the append after `rejected`, with the follower's hint (`matchHint` may match). Returns false
   * for a stale rejection. The new `next` never drops to or below a known match.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false
    } else if (this.next - 1 !== rejected) {
      return false
    }
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1)
    this.probeSent = false
    return true
  }
}
