import { describe, expect, it } from 'vitest'
import { CommitNotices } from '../src/internal/commit-notices.js'
import { type Message, MessageType } from '../src/types.js'

function append(to: string, commit: number, entries = 0): Message {
  return {
    type: MessageType.Append,
    from: 'n1',
    to,
    term: 2,
    index: 10,
    logTerm: 2,
    commit,
    entries: Array.from({ length: entries }, (_, k) => ({
      index: 11 + k,
      term: 2,
      type: 0,
      data: new Uint8Array([k]),
    })),
  } as unknown as Message
}

describe('CommitNotices', () => {
  it('holds bare appends and sends the rest at once', () => {
    const sent: Message[][] = []
    const notices = new CommitNotices((m) => sent.push([...m]))
    const withEntries = append('n2', 5, 2)
    const bare = append('n3', 5)
    expect(notices.filter([withEntries, bare])).toEqual([withEntries])
    expect(sent).toEqual([])
    notices.flush()
    expect(sent).toEqual([[bare]])
    notices.flush()
    expect(sent).toHaveLength(1)
  })

  it('drops a held notice once an append with entries goes to its follower', () => {
    const sent: Message[][] = []
    const notices = new CommitNotices((m) => sent.push([...m]))
    notices.filter([append('n2', 5), append('n3', 5)])
    notices.filter([append('n2', 6, 1)])
    notices.flush()
    expect(sent).toEqual([[append('n3', 5)]])
  })

  it('keeps only the latest bare append per follower', () => {
    const sent: Message[][] = []
    const notices = new CommitNotices((m) => sent.push([...m]))
    notices.filter([append('n2', 5)])
    notices.filter([append('n2', 7)])
    notices.flush()
    expect(sent).toEqual([[append('n2', 7)]])
  })

  it('returns the same array when nothing is held back, and sends nothing after clear()', () => {
    const sent: Message[][] = []
    const notices = new CommitNotices((m) => sent.push([...m]))
    const msgs = [append('n2', 5, 1)]
    expect(notices.filter(msgs)).toBe(msgs)
    notices.filter([append('n3', 5)])
    notices.clear()
    notices.flush()
    expect(sent).toEqual([])
  })
})
