// Disaster recovery after losing a majority (`RaftNodeOptions.forceNewCluster`): this member's storage is
// rewritten as a one-member cluster that keeps everything committed.
import { type ConfState, type Entry, EntryType, type LogStorage, type PersistedState } from '../storage.js'
import { decodeConf, encodeConf } from './conf.js'

/**
 * Rewrites the persisted state `st` of member `id` as a one-member cluster: drops uncommitted entries and
 * appends a committed configuration with `id` as the only voter and every other member (of the log, the
 * snapshot and `bootstrap`) removed. `selfAddress` is recorded for `id` when known.
 */
export async function forceNewCluster(
  storage: LogStorage,
  st: PersistedState,
  id: string,
  bootstrap: readonly string[],
  selfAddress: string | undefined,
): Promise<PersistedState> {
  const commit = st.hardState.commit
  const kept = st.entries.filter((e) => e.index <= commit)
  let conf: ConfState = st.snapshot?.meta.conf ?? { voters: bootstrap, learners: [] }
  for (const e of kept) if (e.type === EntryType.Config) conf = decodeConf(e.data)
  const others = [...conf.voters, ...conf.learners, ...bootstrap].filter((m) => m !== id)
  const next: ConfState = {
    voters: [id],
    learners: [],
    ...(selfAddress !== undefined ? { addresses: { [id]: selfAddress } } : {}),
    removed: [...new Set([...(conf.removed ?? []), ...others])],
  }
  const last = kept.length > 0 ? kept[kept.length - 1]! : null
  const lastIndex = last ? last.index : (st.snapshot?.meta.index ?? 0)
  const lastTerm = last ? last.term : (st.snapshot?.meta.term ?? 0)
  const entry: Entry = {
    index: lastIndex + 1,
    term: Math.max(st.hardState.term, lastTerm),
    type: EntryType.Config,
    data: encodeConf(next),
  }
  // Durably replaces any uncommitted suffix with the new configuration, committed at once: this member is
  // the whole cluster now, and a configuration left uncommitted would let the committed older ones (with the
  // lost members as voters) decide the quorum on start.
  const hardState = { ...st.hardState, term: entry.term, commit: entry.index }
  await storage.save({ entries: [entry], hardState })
  const snapshot = st.snapshot ? { ...st.snapshot, meta: { ...st.snapshot.meta, conf: next } } : null
  return { hardState, snapshot, entries: [...kept, entry] }
}
