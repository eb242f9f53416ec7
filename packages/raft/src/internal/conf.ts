// Membership changes travel in the log as Config entries holding the whole new configuration (JSON), so a
// node's configuration is always that of the last Config entry it applied (or of its snapshot).
import type { ConfState } from '../storage.js'

const utf8 = new TextEncoder()
const utf8d = new TextDecoder('utf-8', { fatal: true })
const MAX_CONF_BYTES = 1 << 20

export function encodeConf(conf: ConfState): Uint8Array {
  const out: ConfState = {
    voters: [...conf.voters],
    learners: [...conf.learners],
    ...(conf.addresses ? { addresses: { ...conf.addresses } } : {}),
    ...(conf.removed && conf.removed.length > 0 ? { removed: [...conf.removed] } : {}),
  }
  return utf8.encode(JSON.stringify(out))
}

/** Decodes and checks a Config entry's data; throws on anything malformed. */
export function decodeConf(data: Uint8Array): ConfState {
  if (data.length > MAX_CONF_BYTES) throw new Error('configuration entry too large')
  const v = JSON.parse(utf8d.decode(data)) as ConfState
  const ids = (l: unknown) => Array.isArray(l) && l.every((x) => typeof x === 'string' && x.length > 0)
  if (typeof v !== 'object' || v === null || !ids(v.voters) || !ids(v.learners)) {
    throw new Error('malformed configuration entry')
  }
  if (v.removed !== undefined && !ids(v.removed)) throw new Error('malformed configuration entry')
  if (v.addresses !== undefined) {
    if (typeof v.addresses !== 'object' || v.addresses === null)
      throw new Error('malformed configuration entry')
    for (const a of Object.values(v.addresses))
      if (typeof a !== 'string') throw new Error('malformed configuration entry')
  }
  return v
}
