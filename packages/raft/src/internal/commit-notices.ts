// A leader's bare commit notices (appends that carry no entries, only a new commit index) tell followers what
// they may apply; the proposers of the committed entries are waiting for their answers meanwhile. Sent after
// the answers, they take nothing from a write's latency: on a real network each notice is a socket write and
// a wake-up of its follower.
import { type Message, MessageType } from '../types.js'

/** Splits messages into those to send at once and the bare commit notices among them. */
export function splitCommitNotices(msgs: readonly Message[]): {
  now: readonly Message[]
  notices: readonly Message[]
} {
  let notices: Message[] | null = null
  for (const m of msgs) {
    if (m.type === MessageType.Append && m.entries.length === 0) (notices ??= []).push(m)
  }
  if (notices === null) return { now: msgs, notices: [] }
  return { now: msgs.filter((m) => !notices.includes(m)), notices }
}
