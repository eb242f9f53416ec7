// A leader's step-down as the core records it (in ticks) turned into what RaftNode reports (in ms, with a
// sentence for logs).
import type { StepDown } from '../core.js'
import type { StepDownInfo } from '../node-options.js'
import { MessageType } from '../types.js'

const typeNames = Object.fromEntries(Object.entries(MessageType).map(([k, v]) => [v, k])) as Record<
  number,
  string
>

export function stepDownInfo(s: StepDown, tickMs: number): StepDownInfo {
  const ms = (ticks: number) => Math.round(ticks * tickMs)
  switch (s.reason) {
    case 'check-quorum': {
      const unheard = s.unheard.map((u) => ({
        id: u.id,
        ms: u.sinceTicks === null ? null : ms(u.sinceTicks),
      }))
      const windowMs = ms(s.windowTicks)
      const who = unheard
        .map((u) => (u.ms === null ? `${u.id} (not once this term)` : `${u.id} (last ${u.ms} ms ago)`))
        .join(', ')
      return {
        reason: s.reason,
        term: s.term,
        unheard,
        windowMs,
        text: `check quorum: no answer within ${windowMs} ms from ${who}`,
      }
    }
    case 'higher-term':
    case 'transfer': {
      const message = typeNames[s.message] ?? String(s.message)
      return {
        reason: s.reason,
        term: s.term,
        from: s.from,
        newTerm: s.newTerm,
        message,
        text:
          s.reason === 'transfer'
            ? `leadership transferred to ${s.from} (its ${message} of term ${s.newTerm})`
            : `higher term ${s.newTerm} from ${s.from} (${message})`,
      }
    }
    case 'removed':
      return { reason: s.reason, term: s.term, text: 'removed from the configuration' }
  }
}
