// Membership changes through a RaftNode's leader: each waits in line until the core accepts a change (the
// previous one committed, this term's no-op committed, a learner to promote caught up), is built from the
// configuration in effect at that moment, and resolves once its Config entry is applied here.
import type { RaftCore } from '../core.js'
import { RaftError } from '../errors.js'
import type { ConfState } from '../storage.js'
import { encodeConf } from './conf.js'
import type { Proposal } from './proposals.js'

interface ConfWaiter {
  readonly describe: string
  /** Builds the new configuration from the current one, or throws when the change no longer makes sense. */
  readonly build: () => ConfState
  readonly resolve: () => void
  readonly reject: (e: Error) => void
  readonly deadline: number
  /** Only propose once this returns true (a learner caught up, for promotion). */
  readonly ready?: () => boolean
}

/** What membership changes need from their node. */
export interface ConfChangeHost {
  readonly leaderWaitMs: number
  /** Transport addresses known per member. */
  readonly addresses: Map<string, string>
  now(): number
  core(): RaftCore | null
  running(): boolean
  /** Entries a lagging follower may be behind and still count as caught up (the trailing entries policy). */
  trailingEntries(): number
  learnAddresses(conf: ConfState): void
  /** The change's Config entry was appended at `index`: settle `p` when it is applied. */
  track(index: number, p: Proposal): void
  schedule(): void
  stoppedError(): RaftError
}

export class ConfChanges {
  private waiters: ConfWaiter[] = []
  /** Learners to promote once caught up (added with `learner: false`). */
  readonly autoPromote = new Set<string>()

  constructor(private readonly host: ConfChangeHost) {}

  get pending(): boolean {
    return this.waiters.length > 0
  }

  /** Adds `id` as a learner (at `address`, if given). */
  add(id: string, address: string | undefined, signal: AbortSignal | undefined): Promise<void> {
    return this.change(`add ${id}`, signal, () => {
      const core = this.host.core()!
      const cur = core.confState()
      if (core.removed.has(id)) throw new RangeError(`${id} was removed from the cluster; IDs never return`)
      if (cur.voters.includes(id) || cur.learners.includes(id))
        throw new RangeError(`${id} is already a member`)
      const addresses = this.addressRecord()
      if (address !== undefined) addresses[id] = address
      return { voters: cur.voters, learners: [...cur.learners, id], addresses, removed: cur.removed ?? [] }
    })
  }

  /** Makes learner `id` a voter once it has caught up and answered the leader. */
  promote(id: string, signal: AbortSignal | undefined): Promise<void> {
    return this.change(
      `promote ${id}`,
      signal,
      () => {
        const cur = this.host.core()!.confState()
        if (!cur.learners.includes(id)) throw new RangeError(`${id} is not a learner`)
        return {
          voters: [...cur.voters, id],
          learners: cur.learners.filter((l) => l !== id),
          addresses: this.addressRecord(),
          removed: cur.removed ?? [],
        }
      },
      () => {
        // Caught up, and heard from: a learner promoted before its first answer is a voter this leader has
        // not heard from, and the next CheckQuorum of a small cluster would depose the leader.
        const core = this.host.core()!
        const match = core.matchOf(id)
        return match > 0 && match + Math.max(this.host.trailingEntries(), 100) >= core.lastIndex
      },
    ).finally(() => this.autoPromote.delete(id))
  }

  /** Removes `id`; refused when the voters left that this leader can reach would not be a majority. */
  remove(id: string, signal: AbortSignal | undefined): Promise<void> {
    return this.change(`remove ${id}`, signal, () => {
      const core = this.host.core()!
      const cur = core.confState()
      const isVoter = cur.voters.includes(id)
      if (!isVoter && !cur.learners.includes(id)) throw new RangeError(`${id} is not a member`)
      const voters = cur.voters.filter((v) => v !== id)
      if (isVoter) {
        if (voters.length === 0) throw new RangeError(`${id} is the last voter`)
        const reachable = core.reachableVoters().filter((v) => v !== id).length
        if (reachable < (voters.length >> 1) + 1) {
          throw new RaftError(
            'UNSAFE_CHANGE',
            `removing ${id} would leave ${reachable} reachable of ${voters.length} voters, not a majority`,
          )
        }
      }
      const addresses = this.addressRecord()
      delete addresses[id]
      return {
        voters,
        learners: cur.learners.filter((l) => l !== id),
        addresses,
        removed: [...(cur.removed ?? []), id],
      }
    })
  }

  private addressRecord(): Record<string, string> {
    const core = this.host.core()!
    const out: Record<string, string> = {}
    for (const id of [...core.voters, ...core.learners]) {
      const a = this.host.addresses.get(id)
      if (a !== undefined) out[id] = a
    }
    return out
  }

  private change(
    describe: string,
    signal: AbortSignal | undefined,
    build: () => ConfState,
    ready?: () => boolean,
  ): Promise<void> {
    if (!this.host.running()) return Promise.reject(this.host.stoppedError())
    if (signal?.aborted) return Promise.reject(signal.reason)
    if (this.host.core()!.role !== 'leader') {
      return Promise.reject(new RaftError('NOT_LEADER', 'membership changes go through the leader'))
    }
    try {
      build()
    } catch (err) {
      return Promise.reject(err)
    }
    return new Promise<void>((resolve, reject) => {
      const w: ConfWaiter = {
        describe,
        build,
        resolve,
        reject,
        deadline: this.host.now() + this.host.leaderWaitMs,
        ...(ready ? { ready } : {}),
      }
      this.waiters.push(w)
      signal?.addEventListener(
        'abort',
        () => {
          if (this.waiters.includes(w)) {
            this.waiters = this.waiters.filter((x) => x !== w)
            reject(signal.reason)
          }
        },
        { once: true },
      )
      this.submit()
    })
  }

  /** Proposes the first waiting membership change once the core allows one. */
  submit(): void {
    const core = this.host.core()
    if (!core || !this.host.running() || this.waiters.length === 0) return
    const w = this.waiters[0]!
    if (core.role !== 'leader') {
      this.waiters.shift()
      w.reject(new RaftError('NOT_LEADER', `lost leadership before proposing: ${w.describe}`))
      this.submit()
      return
    }
    if (w.ready && !w.ready()) return
    let conf: ConfState
    try {
      conf = w.build()
    } catch (err) {
      this.waiters.shift()
      w.reject(err as Error)
      this.submit()
      return
    }
    const r = core.proposeConfChange(conf)
    if (r.index < 0) return
    this.host.learnAddresses(conf)
    this.waiters.shift()
    const p: Proposal = {
      data: encodeConf(conf),
      resolve: () => w.resolve(),
      reject: w.reject,
      deadline: 0,
      term: r.term,
      done: false,
    }
    this.host.track(r.index, p)
    this.host.schedule()
  }

  /** On each tick: changes not proposed in time reject; the first waiting one is tried again. */
  checkDeadlines(now: number): void {
    if (this.waiters.length === 0) return
    this.waiters = this.waiters.filter((w) => {
      if (now < w.deadline) return true
      w.reject(new RaftError('PROPOSAL_DROPPED', `membership change not proposed in time: ${w.describe}`))
      return false
    })
    this.submit()
  }

  failAll(err: RaftError): void {
    for (const w of this.waiters) w.reject(err)
    this.waiters = []
  }
}
