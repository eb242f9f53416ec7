import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { encodePut, KvClient, type KvServer, KvStateMachine, startKvServer } from '../src/index.js'
import { checkPut, MAX_KEY_BYTES } from '../src/kv.js'
import { FrameReader } from '../src/protocol.js'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array | undefined) => (b ? new TextDecoder().decode(b) : undefined)

async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => {
      const s = createServer()
      return new Promise<typeof s>((resolve) => s.listen(0, '127.0.0.1', () => resolve(s)))
    }),
  )
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
  return ports
}

async function until(cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached')
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('KvStateMachine', () => {
  it('applies puts and round-trips its snapshot', () => {
    const sm = new KvStateMachine()
    sm.apply(encodePut('a', enc('1')), 1)
    sm.apply(encodePut('b', enc('two')), 2)
    sm.apply(encodePut('a', new Uint8Array(0)), 3)
    sm.apply(new Uint8Array(0), 4)
    const copy = new KvStateMachine()
    copy.restore(sm.snapshot())
    expect(copy.size).toBe(2)
    expect(dec(copy.get('b'))).toBe('two')
    expect(copy.get('a')?.length).toBe(0)
    expect(() => copy.restore(sm.snapshot().subarray(0, 7))).toThrow(/malformed/)
    expect(() => sm.apply(Uint8Array.of(9, 0, 0), 5)).toThrow(/unknown/)
    expect(() => encodePut('', enc('x'))).toThrow(RangeError)
  })
})

describe('KvStateMachine.apply', () => {
  it('keeps a copy of the value, not a view of the command', () => {
    const sm = new KvStateMachine()
    const command = encodePut('k', enc('abc'))
    sm.apply(command, 1)
    command.fill(0x7a)
    expect(dec(sm.get('k'))).toBe('abc')
  })
})

describe('checkPut', () => {
  it('takes a put command as it is and refuses what encodePut would not make', () => {
    const c = encodePut('clé', enc('v'))
    expect(checkPut(c)).toBe(c)
    const key = (k: number, ...rest: number[]) => Uint8Array.of(1, k & 0xff, k >>> 8, ...rest)
    expect(() => checkPut(key(0))).toThrow(/key must be 1-/)
    expect(() => checkPut(key(2, 0x61))).toThrow(/key must be 1-/)
    expect(() => checkPut(key(1, 0xff))).toThrow(/utf-8/)
    expect(() => checkPut(Uint8Array.of(2, 1, 0, 0x61))).toThrow(/not a put/)
    expect(() => checkPut(Uint8Array.of(1, 1))).toThrow(/not a put/)
    const long = new Uint8Array(3 + MAX_KEY_BYTES + 1).fill(0x61)
    long.set(key(MAX_KEY_BYTES + 1).subarray(0, 3))
    expect(() => checkPut(long)).toThrow(/key must be 1-/)
    const longest = encodePut('a'.repeat(MAX_KEY_BYTES), new Uint8Array(0))
    expect(checkPut(longest)).toBe(longest)
  })
})

describe('KvStateMachine.snapshotAsync', () => {
  it('captures the map as of the call while applies and a restore go on, in the format of snapshot()', async () => {
    const sm = new KvStateMachine()
    let index = 0
    for (let i = 0; i < 20_000; i++) sm.apply(encodePut(`k${i}`, enc(`v${i}`)), ++index)
    const expected = sm.snapshot()
    const pending = sm.snapshotAsync()
    // Overwrites, new keys and a restore while it is serialized in slices.
    let done = false
    void pending.then(() => (done = true))
    let round = 0
    while (!done) {
      for (let i = 0; i < 500; i++)
        sm.apply(encodePut(`k${(round * 500 + i) % 25_000}`, enc(`w${round}`)), ++index)
      if (round === 3) {
        const other = new KvStateMachine()
        other.apply(encodePut('other', enc('x')), 1)
        sm.restore(other.snapshot())
      }
      round++
      await new Promise((r) => setImmediate(r))
    }
    expect(round).toBeGreaterThan(1)
    expect(Buffer.from(await pending).equals(Buffer.from(expected))).toBe(true)
    const copy = new KvStateMachine()
    copy.restore(await pending)
    expect(copy.size).toBe(20_000)
    expect(dec(copy.get('k19999'))).toBe('v19999')
    // After the restore the live map is the restored one, and a new snapshot sees it.
    expect(dec(sm.get('other'))).toBe('x')
    const again = new KvStateMachine()
    again.restore(await sm.snapshotAsync())
    expect(again.size).toBe(sm.size)
  })

  it('applies overwrites seen by a snapshot taken after them', async () => {
    const sm = new KvStateMachine()
    sm.apply(encodePut('a', enc('1')), 1)
    const first = sm.snapshotAsync()
    sm.apply(encodePut('a', enc('2')), 2)
    sm.apply(encodePut('b', enc('3')), 3)
    const copy = new KvStateMachine()
    copy.restore(await first)
    expect([copy.size, dec(copy.get('a'))]).toEqual([1, '1'])
    copy.restore(await sm.snapshotAsync())
    expect([copy.size, dec(copy.get('a')), dec(copy.get('b'))]).toEqual([2, '2', '3'])
  })
})

describe('FrameReader', () => {
  it('splits a byte stream into frames however it is cut, and refuses oversized frames', () => {
    const frames = [enc('hello'), new Uint8Array(0), enc('x'.repeat(300))]
    const stream = Buffer.concat(
      frames.map((f) => {
        const b = Buffer.alloc(4 + f.length)
        b.writeUInt32LE(f.length, 0)
        b.set(f, 4)
        return b
      }),
    )
    for (const cut of [1, 3, 4, 7, 100, stream.length]) {
      const got: string[] = []
      const r = new FrameReader()
      for (let o = 0; o < stream.length; o += cut)
        r.push(stream.subarray(o, o + cut), (f) => got.push(f.toString()))
      expect(got).toEqual(frames.map((f) => Buffer.from(f).toString()))
    }
    const big = Buffer.alloc(8)
    big.writeUInt32LE(1000, 0)
    expect(() => new FrameReader(999).push(big, () => {})).toThrow(/over the limit/)
  })
})

/**
 * A leader change (elections happen on a loaded machine) fails a request in flight; these writers and readers
 * are sequential and each key has one value in flight, so trying again is safe here.
 */
async function retrying<T>(op: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op()
    } catch (err) {
      const code = (err as { code?: string }).code
      const transient = [
        'NO_LEADER',
        'NOT_LEADER',
        'PROPOSAL_DROPPED',
        'LOST_LEADERSHIP',
        'TIMEOUT',
      ].includes(code ?? '')
      if (!transient || attempt >= 20) throw err
      await new Promise((r) => setTimeout(r, 50 * attempt))
    }
  }
}

describe('raft-kv', () => {
  const root = mkdtempSync(join(tmpdir(), 'raft-kv-test-'))
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it('serves linearizable puts and gets from every member, across a member restart', async () => {
    const ports = await freePorts(3)
    const peers = ['n1', 'n2', 'n3'].map((id, k) => ({ id, address: `127.0.0.1:${ports[k]}` }))
    const start = (id: string) =>
      startKvServer({ id, peers, dataDir: join(root, id), clientAddress: '127.0.0.1:0' })
    const servers = new Map<string, KvServer>()
    for (const p of peers) servers.set(p.id, await start(p.id))
    await until(() => [...servers.values()].some((s) => s.node.role === 'leader'))
    const clients = await Promise.all([...servers.values()].map((s) => KvClient.connect(s.clientAddress)))
    try {
      // Puts through every member (followers forward to the leader), then reads anywhere see them.
      await Promise.all(clients.map((c, k) => retrying(() => c.put(`key${k}`, enc(`value${k}`)))))
      for (const c of clients) {
        for (let k = 0; k < 3; k++) expect(dec(await retrying(() => c.get(`key${k}`)))).toBe(`value${k}`)
        expect(await retrying(() => c.get('missing'))).toBeUndefined()
      }
      // A write completed through one member is visible to a read on another right away.
      for (let i = 0; i < 20; i++) {
        await retrying(() => clients[i % 3]!.put('counter', enc(String(i))))
        expect(dec(await retrying(() => clients[(i + 1) % 3]!.get('counter')))).toBe(String(i))
      }
      // Restart a follower from its files: it comes back with the data.
      const follower = [...servers.entries()].find(([, s]) => s.node.role !== 'leader')!
      const fi = peers.findIndex((p) => p.id === follower[0])
      await clients[fi]!.close()
      await follower[1].close()
      const again = await start(follower[0])
      servers.set(follower[0], again)
      await until(() => again.state.size === 4)
      const c = await KvClient.connect(again.clientAddress)
      clients[fi] = c
      expect(dec(await retrying(() => c.get('counter')))).toBe('19')
      await expect(c.put('', enc('x'))).rejects.toThrow(TypeError)
    } finally {
      await Promise.all(clients.map((c) => c.close()))
      await Promise.all([...servers.values()].map((s) => s.close()))
    }
  })
})
