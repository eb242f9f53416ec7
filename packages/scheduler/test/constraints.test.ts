import { describe, expect, it } from 'vitest'
import {
  ConstraintSet,
  isSchedulerError,
  nodeMatchesConstraints,
  parseConstraints,
  validateConstraints,
  validatePlacement,
} from '../src/index.js'
import { node } from './fixtures.js'

function reason(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(isSchedulerError(err)).toBe(true)
    return (err as Error).message
  }
  throw new Error('expected a SchedulerError')
}

describe('parseConstraints', () => {
  it('parses == and != with spaces around', () => {
    expect(parseConstraints(['node.role==manager', ' node.labels.zone != east '])).toEqual([
      { key: 'node.role', operator: '==', value: 'manager' },
      { key: 'node.labels.zone', operator: '!=', value: 'east' },
    ])
  })

  it("rejects a missing operator with swarm's message", () => {
    expect(reason(() => validateConstraints(['node.role=manager']))).toBe(
      'constraint expected one operator from ==, !=',
    )
  })

  it('rejects bad keys and values with the reason', () => {
    expect(reason(() => validateConstraints(['n==x']))).toBe("key 'n' is invalid")
    expect(reason(() => validateConstraints(['node.role==a>b']))).toBe("value 'a>b' is invalid")
    expect(reason(() => validateConstraints(['node.role==']))).toBe("value '' is invalid")
    expect(reason(() => validateConstraints(['node.lables.zone==x']))).toMatch(
      /key 'node.lables.zone' is not supported/,
    )
    expect(reason(() => validateConstraints(['node.ip==10.0.0.300']))).toMatch(/not an IP address or CIDR/)
  })

  it('names the argument on a programmer error', () => {
    expect(() => parseConstraints('node.role==manager' as unknown as string[])).toThrow(TypeError)
    expect(() => parseConstraints([1 as unknown as string])).toThrow(/exprs/)
  })
})

describe('ConstraintSet', () => {
  const n = node('abc', {
    hostname: 'Worker-1',
    role: 'worker',
    labels: { zone: 'East', Rack: 'r1' },
    engineLabels: { storage: 'ssd' },
    addr: '192.168.1.20',
    os: 'linux',
    arch: 'x86_64',
  })
  const m = (e: string) => nodeMatchesConstraints(n, [e])

  it('matches every key, values case-insensitively', () => {
    expect(m('node.id==ABC')).toBe(true)
    expect(m('node.hostname==worker-1')).toBe(true)
    expect(m('node.role==WORKER')).toBe(true)
    expect(m('node.role!=manager')).toBe(true)
    expect(m('node.platform.os==Linux')).toBe(true)
    expect(m('node.platform.arch==x86_64')).toBe(true)
    expect(m('node.labels.zone==east')).toBe(true)
    expect(m('engine.labels.storage==SSD')).toBe(true)
    expect(m('NODE.LABELS.zone==east')).toBe(true)
  })

  it('keeps label names case-sensitive; a missing label is the empty value', () => {
    expect(m('node.labels.rack==r1')).toBe(false)
    expect(m('node.labels.Rack==r1')).toBe(true)
    expect(m('node.labels.missing!=x')).toBe(true)
    expect(m('node.labels.missing==x')).toBe(false)
  })

  it('matches node.ip against an address or a CIDR network', () => {
    expect(m('node.ip==192.168.1.20')).toBe(true)
    expect(m('node.ip==192.168.1.0/24')).toBe(true)
    expect(m('node.ip!=192.168.1.0/24')).toBe(false)
    expect(m('node.ip==10.0.0.0/8')).toBe(false)
    expect(m('node.ip==::ffff:192.168.1.20')).toBe(true)
    const v6 = node('v6', { addr: '2001:db8::2' })
    expect(nodeMatchesConstraints(v6, ['node.ip==2001:db8::/32'])).toBe(true)
    expect(nodeMatchesConstraints(v6, ['node.ip==2001:DB8:0:0:0:0:0:2'])).toBe(true)
    expect(nodeMatchesConstraints(v6, ['node.ip==192.168.0.0/16'])).toBe(false)
  })

  it('requires all constraints to hold', () => {
    const set = ConstraintSet.parse(['node.role==worker', 'node.labels.zone==west'])
    expect(set.size).toBe(2)
    expect(set.matches(n)).toBe(false)
    expect(ConstraintSet.parse(['node.role==worker', 'node.labels.zone==east']).matches(n)).toBe(true)
  })
})

describe('validatePlacement', () => {
  it('accepts label spreads and rejects other descriptors', () => {
    validatePlacement({ preferences: [{ spread: { spreadDescriptor: 'node.labels.zone' } }] })
    expect(() =>
      validatePlacement({ preferences: [{ spread: { spreadDescriptor: 'node.hostname' } }] }),
    ).toThrow(/spread descriptor/)
  })

  it('rejects a negative max replicas', () => {
    expect(() => validatePlacement({ maxReplicas: -1 })).toThrow(/maxReplicas/)
  })
})
