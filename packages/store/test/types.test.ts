import { describe, expect, it } from 'vitest'
import { generateId, isId, isStoreError, StoreError, TASK_STATES, taskStateRank } from '../src/index.js'

describe('taskStateRank', () => {
  it('orders task states as swarm does', () => {
    expect(TASK_STATES.slice(0, 8)).toEqual([
      'new',
      'pending',
      'assigned',
      'accepted',
      'preparing',
      'ready',
      'starting',
      'running',
    ])
    expect(taskStateRank('running')).toBeLessThan(taskStateRank('complete'))
    expect(taskStateRank('shutdown')).toBeLessThan(taskStateRank('failed'))
    expect(taskStateRank('orphaned')).toBe(TASK_STATES.length - 1)
  })

  it('rejects an unknown state naming the argument', () => {
    expect(() => taskStateRank('bogus' as never)).toThrow(/state/)
  })
})

describe('generateId', () => {
  it('makes 25 base-36 characters', () => {
    for (let i = 0; i < 100; i++) expect(isId(generateId())).toBe(true)
  })

  it('is deterministic with injected randomness and pads', () => {
    expect(generateId(() => new Uint8Array(16))).toBe('0'.repeat(25))
    expect(generateId(() => new Uint8Array(16).fill(255))).toBe(
      (2n ** 128n - 1n).toString(36).padStart(25, '0'),
    )
  })

  it('rejects bad randomness', () => {
    expect(() => generateId(() => new Uint8Array(3))).toThrow(TypeError)
  })
})

describe('StoreError', () => {
  it('carries a code and is recognised by name', () => {
    const err = new StoreError('SEQUENCE', 'update out of sequence')
    expect(isStoreError(err, 'SEQUENCE')).toBe(true)
    expect(isStoreError(err, 'NOT_FOUND')).toBe(false)
    expect(isStoreError(new Error('x'))).toBe(false)
  })
})
