// Leadership-scoped store writes for the leader's duties (scheduler, orchestrators, dispatcher tracking, CA,
// roles). Each duty runs, and writes, inside the scope of the raft term it started under; the manager's
// proposer sends such writes with `proposeScoped`, so a deposed leader's duties, acting on a stale view,
// can never commit anything (swarmkit: leader-duty proposals are only accepted from the leader of their term).
import { AsyncLocalStorage } from 'node:async_hooks'
import type { SchedulerStore } from '@swarmkit/scheduler'
import type { ClusterStore } from '@swarmkit/store'

const dutyTerm = new AsyncLocalStorage<number>()

/** The term of the leadership the current write belongs to, or undefined outside leader duties. */
export function currentDutyTerm(): number | undefined {
  return dutyTerm.getStore()
}

/** Runs `fn` (and every timer, promise and write it starts) as a leader duty of `term`. */
export function inDutyScope<R>(term: number, fn: () => R): R {
  return dutyTerm.run(term, fn)
}

/**
 * The store as a duty of `term` sees it: reads as usual, every write scoped to that term, and the store's
 * spec limits (the orchestrator reconciles services up to them; without them it would fall back to the
 * defaults and leave alone a service that `--max-replicas` allowed).
 */
export function scopedStore(store: ClusterStore, term: number): DutyStore {
  return dutyStore(store, ((fn, options) =>
    dutyTerm.run(term, () => store.update(fn, options))) as ClusterStore['update'])
}

/** The store as the scheduler and orchestrators take it: its reads and spec limits, writes through `update`. */
export type DutyStore = SchedulerStore & { readonly limits: ClusterStore['limits'] }

/** `store`'s reads and spec limits, with `update` for writes (a term's scope, or a refusal in standby). */
export function dutyStore(store: ClusterStore, update: ClusterStore['update']): DutyStore {
  return {
    limits: store.limits,
    view: (fn) => store.view(fn),
    watch: ((...args: Parameters<ClusterStore['watch']>) => store.watch(...args)) as ClusterStore['watch'],
    update,
  }
}
