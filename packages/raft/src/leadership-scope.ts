// Leadership-scoped proposals: a leader duty (scheduler, orchestrator, dispatcher, ...) works from the state it
// saw while it led, so its writes may commit only while that leadership holds. As in swarmkit, a scoped
// proposal carries the term its duty started under; the node refuses it (never forwards it) unless it leads in
// that term, and every member refuses at apply an entry whose scope term is not the entry's own term (a
// deposed leader's proposal that reached the new leader by any path can never sneak in).
import { RaftError } from './errors.js'
import type { ProposeResult, StateMachine } from './node.js'

/** 0xc1 is never used by msgpack (nor a valid UTF-8 lead byte), so no plain command starts like this. */
const MAGIC = [0xc1, 0x53, 0x43, 0x50] as const // "\xc1SCP"
const HEADER = MAGIC.length + 8

/** What `apply` returns for a scoped entry it refused (the state machine saw an empty command instead). */
export class ScopeRefused {
  constructor(
    readonly scopeTerm: number,
    readonly entryTerm: number,
  ) {}
}

/** The command wrapped with the term its leadership scope started under. */
export function encodeScoped(term: number, command: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(term) || term < 1) throw new RangeError('term: expected a positive integer')
  const out = new Uint8Array(HEADER + command.length)
  out.set(MAGIC, 0)
  new DataView(out.buffer).setBigUint64(MAGIC.length, BigInt(term))
  out.set(command, HEADER)
  return out
}

/** The scope term and inner command of a scoped command, or undefined for a plain one. */
export function decodeScoped(data: Uint8Array): { term: number; command: Uint8Array } | undefined {
  if (data.length < HEADER) return undefined
  for (let i = 0; i < MAGIC.length; i++) if (data[i] !== MAGIC[i]) return undefined
  const term = Number(new DataView(data.buffer, data.byteOffset, data.byteLength).getBigUint64(MAGIC.length))
  return { term, command: data.subarray(HEADER) }
}

/** The part of a raft node that scoped proposals need (RaftNode fits). */
export interface ScopedProposerNode {
  readonly id: string
  readonly leaderId: string | null
  readonly term: number
  propose(command: Uint8Array, options?: { signal?: AbortSignal }): Promise<ProposeResult>
}

const lostLeadership = (term: number, node: ScopedProposerNode): RaftError =>
  new RaftError(
    'PROPOSAL_DROPPED',
    `leadership of term ${term} is over (this node is ${node.leaderId === node.id ? 'leader' : 'not the leader'} in term ${node.term}): a leader duty's write is refused`,
  )

/**
 * Proposes `command` scoped to leadership in `term`: rejects at once with PROPOSAL_DROPPED (nothing committed)
 * when this node is not the leader in that term, and with PROPOSAL_DROPPED when the entry was refused at apply.
 */
export async function proposeScoped(
  node: ScopedProposerNode,
  term: number,
  command: Uint8Array,
  options?: { signal?: AbortSignal },
): Promise<ProposeResult> {
  if (node.leaderId !== node.id || node.term !== term) throw lostLeadership(term, node)
  const r = await node.propose(encodeScoped(term, command), options)
  if (r.result instanceof ScopeRefused) throw lostLeadership(term, node)
  return r
}

/**
 * Wraps a state machine so that scoped entries apply only in the term they were scoped to. A refused entry
 * reaches the inner state machine as an empty command (its no-op: the index advances, nothing changes), the
 * same on every member; plain commands pass through untouched.
 */
export function scopedStateMachine(inner: StateMachine): StateMachine {
  return {
    apply(command, index, term) {
      const scoped = decodeScoped(command)
      if (!scoped) return inner.apply(command, index, term)
      if (term === undefined) throw new TypeError('scopedStateMachine: apply needs the entry term')
      if (scoped.term !== term) {
        const r = inner.apply(new Uint8Array(0), index, term)
        const refused = new ScopeRefused(scoped.term, term)
        return r instanceof Promise ? r.then(() => refused) : refused
      }
      return inner.apply(scoped.command, index, term)
    },
    snapshot: () => inner.snapshot(),
    restore: (snapshot) => inner.restore(snapshot),
  }
}
