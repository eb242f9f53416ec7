// `POST /secrets/{id}/update` and `POST /configs/{id}/update` (what `docker stack deploy` sends for a secret or
// config that exists already): labels may change; the name and data may not (swarmkit's rule and words).

import { timingSafeEqual } from 'node:crypto'
import type { ClusterStore, ReadTx } from '@swarmkit/store'
import { labels } from './docker-json.js'
import { ApiError, MESSAGES } from './errors.js'

export const ONLY_LABELS = 'rpc error: code = InvalidArgument desc = only updates to Labels are allowed'

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/** Applies a label update to the secret or config `ref`, at `version` (a stale one is "out of sequence"). */
export async function updateBlob(
  store: ClusterStore,
  table: 'secrets' | 'configs',
  ref: string,
  version: number,
  body: unknown,
  lookup: (tx: ReadTx, ref: string) => { id: string },
): Promise<void> {
  const b = (body ?? {}) as Record<string, unknown>
  const name = typeof b.Name === 'string' ? b.Name : undefined
  const data = typeof b.Data === 'string' ? new Uint8Array(Buffer.from(b.Data, 'base64')) : undefined
  const wanted = labels(b.Labels, 'Labels')
  await store.update((tx) => {
    const cur = tx.get(table, lookup(tx, ref).id)!
    if (cur.meta.version !== version) throw new ApiError(500, MESSAGES.outOfSequence)
    if ((name !== undefined && name !== cur.spec.name) || (data && !sameBytes(data, cur.spec.data)))
      throw new ApiError(400, ONLY_LABELS)
    tx.update(table, { ...cur, spec: { ...cur.spec, labels: wanted } } as never)
  })
}
