/**
 * A linearizability checker: Wing & Gong's search with Lowe's memoization of (linearized set, state), and
 * P-compositionality (a history is linearizable iff each independent partition is, e.g. each key of a
 * key-value store), in the manner of porcupine.
 *
 * Operations whose outcome is unknown (a client timed out, a proposal was LOST_LEADERSHIP) have
 * `return: Infinity` and `output: undefined`: they may take effect at any point after their call, or never.
 */

/** One client operation, with the times of its call and its return (any totally ordered clock). */
export interface Operation<I, O> {
  readonly client?: number
  readonly input: I
  /** undefined when the outcome is unknown. */
  readonly output: O | undefined
  readonly call: number
  /** Infinity when the operation never returned (outcome unknown). */
  readonly return: number
}

/** A sequential specification. */
export interface Model<S, I, O> {
  init(): S
  /**
   * Applies `input` to `state`; ok is false when `output` is impossible. `output` undefined: unknown. The search
   * takes an operation that leaves a state as it is for a read that leaves every state as it is, unless `blind`
   * says it is a write.
   */
  step(state: S, input: I, output: O | undefined): { ok: boolean; state: S }
  /** A string that is equal for equal states (memoization key). */
  hash(state: S): string
  /**
   * True when `input` is a blind write: `step` accepts it in every state and leads to a state that does not
   * depend on the one before (a put to a register). Lets the search linearize writes nobody can observe at once
   * instead of trying every subset and order of them (see `checkPartition`). Default: none is.
   */
  blind?(input: I): boolean
  /** Splits a history into independent parts (default: one part). */
  partition?(history: readonly Operation<I, O>[]): Operation<I, O>[][]
}

/** The verdict: `ok` (linearizable), `illegal` (no order explains the history), `unknown` (the search ran out of budget). */
export type CheckOutcome = 'ok' | 'illegal' | 'unknown'

/** The verdict of {@link checkLinearizability}, with what explains it. */
export interface CheckResult<I, O> {
  readonly outcome: CheckOutcome
  /** The partition that is not linearizable (or ran out of budget), for the report. */
  readonly partition?: readonly Operation<I, O>[]
}

/** Limits for {@link checkLinearizability}. */
export interface CheckOptions {
  /** Upper bound of search steps per partition; beyond it the outcome is 'unknown'. Default 5,000,000. */
  readonly maxSteps?: number
}

interface Node {
  id: number
  isReturn: boolean
  prev: Node | null
  next: Node | null
  match: Node | null
}

/** Checks one history against a model. */
export function checkLinearizability<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult<I, O> {
  if (!model || typeof model.step !== 'function') throw new TypeError('model must be a Model')
  if (!Array.isArray(history)) throw new TypeError('history must be an array')
  const maxSteps = options.maxSteps ?? 5_000_000
  const parts = model.partition ? model.partition(history) : [history.slice()]
  let unknown: Operation<I, O>[] | undefined
  for (const part of parts) {
    const r = checkPartition(model, part, maxSteps)
    if (r === 'illegal') return { outcome: 'illegal', partition: part }
    if (r === 'unknown' && !unknown) unknown = part
  }
  return unknown ? { outcome: 'unknown', partition: unknown } : { outcome: 'ok' }
}

function checkPartition<S, I, O>(
  model: Model<S, I, O>,
  ops: readonly Operation<I, O>[],
  maxSteps: number,
): CheckOutcome {
  const n = ops.length
  if (n === 0) return 'ok'
  // Events sorted by time; at equal times calls come first (such operations are treated as concurrent).
  const events: { t: number; ret: boolean; id: number }[] = []
  for (let i = 0; i < n; i++) {
    const op = ops[i]!
    if (!(op.return >= op.call)) throw new RangeError(`operation ${i} returns before it is called`)
    events.push({ t: op.call, ret: false, id: i })
    if (op.return !== Number.POSITIVE_INFINITY) events.push({ t: op.return, ret: true, id: i })
  }
  events.sort((a, b) => a.t - b.t || Number(a.ret) - Number(b.ret) || a.id - b.id)
  const head: Node = { id: -1, isReturn: false, prev: null, next: null, match: null }
  const calls: Node[] = new Array(n)
  let tail = head
  for (const e of events) {
    const node: Node = { id: e.id, isReturn: e.ret, prev: tail, next: null, match: null }
    tail.next = node
    tail = node
    if (e.ret) calls[e.id]!.match = node
    else calls[e.id] = node
  }

  const lift = (c: Node) => {
    c.prev!.next = c.next
    if (c.next) c.next.prev = c.prev
    const r = c.match
    if (r) {
      r.prev!.next = r.next
      if (r.next) r.next.prev = r.prev
    }
  }
  const unlift = (c: Node) => {
    const r = c.match
    if (r) {
      r.prev!.next = r
      if (r.next) r.next.prev = r
    }
    c.prev!.next = c
    if (c.next) c.next.prev = c
  }

  const words = new Uint32Array((n + 31) >>> 5)
  const cache = new Set<string>()
  /** `forced`: an operation that left the state as it was, linearized without trying it anywhere later. */
  const stack: { node: Node; state: S; hash: string; forced: boolean }[] = []
  let state = model.init()
  let hash = model.hash(state)
  let entry: Node | null = head.next
  let fresh = true
  let steps = 0
  const isSet = (id: number) => (words[id >>> 5]! & (1 << (id & 31))) !== 0
  const flip = (id: number) => {
    const w = id >>> 5
    words[w] = words[w]! ^ (1 << (id & 31))
  }
  const blind = ops.map((op) => model.blind?.(op.input) === true)
  // A state is dead when no operation still to be linearized, other than a blind write, accepts it: nothing can
  // observe it any more, only overwrite it.
  const dead = (s: S): boolean => {
    for (let i = 0; i < n; i++)
      if (!blind[i] && !isSet(i) && model.step(s, ops[i]!.input, ops[i]!.output).ok) return false
    return true
  }
  // Linearizes `node` with the state it leads to, unless that configuration was already explored (and failed).
  const descend = (node: Node, next: S, nextHash: string, forced: boolean): boolean => {
    flip(node.id)
    const key = `${words.join(',')}|${nextHash}`
    if (cache.has(key)) {
      flip(node.id)
      return false
    }
    cache.add(key)
    stack.push({ node, state, hash, forced })
    state = next
    hash = nextHash
    lift(node)
    entry = head.next
    fresh = true
    return true
  }
  // Undoes linearizations up to the last one made by choice, and goes on with the next choice there.
  const backtrack = (): boolean => {
    for (;;) {
      const top = stack.pop()
      if (!top) return false
      state = top.state
      hash = top.hash
      flip(top.node.id)
      unlift(top.node)
      if (!top.forced) {
        entry = top.node.next
        return true
      }
    }
  }
  while (head.next !== null) {
    if (++steps > maxSteps) return 'unknown'
    if (fresh) {
      fresh = false
      // An operation that may take effect now and leaves the state as it is (a read of the current value) is
      // linearized here and now, before anything else is tried: any completion that places it later also
      // works with it here (everything that returned before its call is already linearized, and it changes
      // nothing the others see). If none follows, this configuration is dead. Without this rule a read
      // concurrent with many writes made the search try every order of the writes first.
      //
      // Likewise a blind write that returned, whose value nobody can observe, while the current state is dead
      // too: it is linearized now. Proof: take any completion σ from here. No operation but a blind write
      // accepts the current state, so σ begins with a blind write (or is empty); after the write in σ comes a
      // blind write or nothing, for the same reason. Moving the write to the front keeps every state σ's
      // operations see (the blind write that followed it, or began σ, sets the state as before; only the final
      // state may differ, and nobody checks it), and keeps real time (it is callable now, so everything that
      // returned before its call is linearized already; moving it earlier breaks no other order). Without this
      // rule many overlapping puts nobody read made the search try every subset of them before each read. As
      // with reads, if the configuration it leads to was explored already, this one fails too.
      let stuck = false
      let forced = false
      let stateDead: boolean | undefined
      for (let c: Node | null = head.next; c !== null && !c.isReturn; c = c.next) {
        const op = ops[c.id]!
        const r = model.step(state, op.input, op.output)
        if (!r.ok) continue
        const h = model.hash(r.state)
        // A blind write of the value the state already has is no read: moved here, a write that a completion
        // places between here and its own place would no longer be overwritten by it (a put of 0 while the
        // state is 0 must still be tried later). Taken for a read, it made some linearizable histories illegal.
        if (h !== hash || blind[c.id]) {
          if (!blind[c.id] || op.return === Number.POSITIVE_INFINITY) continue
          stateDead ??= dead(state)
          if (!stateDead) continue
          if (!dead(r.state)) continue
        }
        if (descend(c, r.state, h, true)) forced = true
        else stuck = true
        break
      }
      if (forced) continue
      if (stuck) {
        if (!backtrack()) return 'illegal'
        continue
      }
    }
    if (entry === null) return 'ok' // only calls of unfinished operations are left
    if (!entry.isReturn) {
      const op = ops[entry.id]!
      const r = model.step(state, op.input, op.output)
      if (r.ok && descend(entry, r.state, model.hash(r.state), false)) continue
      entry = entry.next
    } else if (!backtrack()) return 'illegal'
  }
  return 'ok'
}

/** Inputs of the key-value model. */
export type KvInput =
  | { readonly op: 'get'; readonly key: string }
  | { readonly op: 'put'; readonly key: string; readonly value: string }
  | { readonly op: 'append'; readonly key: string; readonly value: string }

/** Outputs: the value read (null for a missing key); writes return nothing worth checking. */
export type KvOutput = { readonly value: string | null } | { readonly ok: true }

/**
 * A key-value register per key: get, put and append. Partitioned by key, since operations on different keys
 * commute. State is the value of the partition's single key.
 */
export const kvModel: Model<string | null, KvInput, KvOutput> = {
  init: () => null,
  step(state, input, output) {
    switch (input.op) {
      case 'get':
        if (output === undefined) return { ok: true, state }
        return { ok: 'value' in output && output.value === state, state }
      case 'put':
        return { ok: true, state: input.value }
      case 'append':
        return { ok: true, state: (state ?? '') + input.value }
    }
  },
  hash: (state) => (state === null ? '\u0000' : `=${state}`),
  blind: (input) => input.op === 'put',
  partition(history) {
    // A put whose outcome is unknown and whose value no completed read returned can always be left out
    // (never taking effect explains everything it could), and so can a read with no output: pruning them
    // keeps the search small when many operations time out.
    // A put whose outcome is unknown but whose value was read, and that is the only put of that value to its
    // key, did take effect, before the first read of it returned: it becomes an operation that returned then.
    // Without pending operations the search no longer has to try each at every later point, which is where
    // it ran out of budget.
    const firstSeen = new Map<string, number>()
    const writers = new Map<string, number>()
    for (const op of history) {
      const at = `${op.input.key}\u0000${op.input.op === 'get' ? '' : op.input.value}`
      if (op.input.op === 'put') writers.set(at, (writers.get(at) ?? 0) + 1)
      if (op.input.op === 'get' && op.output && 'value' in op.output && op.output.value !== null) {
        const seen = `${op.input.key}\u0000${op.output.value}`
        firstSeen.set(seen, Math.min(firstSeen.get(seen) ?? Number.POSITIVE_INFINITY, op.return))
      }
    }
    const byKey = new Map<string, Operation<KvInput, KvOutput>[]>()
    for (let op of history) {
      if (op.output === undefined) {
        if (op.input.op === 'get') continue
        if (op.input.op === 'put') {
          const at = `${op.input.key}\u0000${op.input.value}`
          const seen = firstSeen.get(at)
          if (seen === undefined) continue
          if (op.return === Number.POSITIVE_INFINITY && writers.get(at) === 1 && seen >= op.call) {
            op = { ...op, return: seen }
          }
        }
      }
      let list = byKey.get(op.input.key)
      if (!list) byKey.set(op.input.key, (list = []))
      list.push(op)
    }
    return [...byKey.values()]
  },
}
