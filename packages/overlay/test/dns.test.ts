import dgram from 'node:dgram'
import net from 'node:net'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import {
  type DirectoryState,
  DNS_TYPE,
  DnsFormatError,
  decodeQuery,
  type EmbeddedResolver,
  embeddedResolver,
  encodeName,
  RCODE,
  serviceDirectory,
} from '../src/index.js'

function query(name: string, type: number = DNS_TYPE.A, id = 0x1234): Uint8Array {
  const q = encodeName(name)
  const out = new Uint8Array(12 + q.length + 4)
  out[0] = id >> 8
  out[1] = id & 0xff
  out[2] = 0x01 // RD
  out[5] = 1
  out.set(q, 12)
  out[12 + q.length + 1] = type
  out[12 + q.length + 3] = 1
  return out
}

// Answers of a response: the addresses as text (A and AAAA only), and the rcode.
function answers(resp: Uint8Array): { rcode: number; tc: boolean; addresses: string[] } {
  const rcode = resp[3]! & 0x0f
  const an = (resp[6]! << 8) | resp[7]!
  let o = 12
  if (((resp[4]! << 8) | resp[5]!) === 0) return { rcode, tc: (resp[2]! & 0x02) !== 0, addresses: [] }
  while (o < resp.length && resp[o] !== 0) o += resp[o]! + 1
  o += 5
  const addresses: string[] = []
  for (let i = 0; i < an; i++) {
    o += 2 // pointer
    const type = (resp[o]! << 8) | resp[o + 1]!
    o += 8
    const len = (resp[o]! << 8) | resp[o + 1]!
    o += 2
    const data = resp.subarray(o, o + len)
    if (type === DNS_TYPE.A) addresses.push([...data].join('.'))
    if (type === DNS_TYPE.AAAA) addresses.push(Buffer.from(data).toString('hex'))
    o += len
  }
  return { rcode, tc: (resp[2]! & 0x02) !== 0, addresses }
}

const state: DirectoryState = {
  services: [
    { id: 's-web', name: 'web', vips: { front: '10.0.1.2' }, aliases: { front: ['www'] } },
    { id: 's-db', name: 'db', endpointMode: 'dnsrr' },
    { id: 's-back', name: 'back', vips: { back: '10.0.2.2' } },
  ],
  tasks: [
    { id: 't1', name: 'web.1.t1', service: 's-web', addresses: { front: '10.0.1.5' } },
    { id: 't2', name: 'web.2.t2', service: 's-web', addresses: { front: '10.0.1.6' } },
    { id: 't3', name: 'web.3.t3', service: 's-web', addresses: { front: '10.0.1.7' }, healthy: false },
    { id: 'd1', name: 'db.1.d1', service: 's-db', addresses: { front: '10.0.1.8', back: '10.0.2.8' } },
    { id: 'd2', name: 'db.2.d2', service: 's-db', addresses: { front: '10.0.1.9' } },
    { id: 'b1', name: 'back.1.b1', service: 's-back', addresses: { back: '10.0.2.5' } },
    { id: 'c1', name: 'tool', addresses: { front: '10.0.1.20' }, aliases: { front: ['toolbox'] } },
  ],
}

describe('DNS wire format', () => {
  it('decodes a query and rejects what is not one', () => {
    const q = decodeQuery(query('Tasks.Web'))
    expect(q.question).toEqual({ name: 'tasks.web', type: 1, class: 1 })
    expect(q.udpSize).toBe(512)
    expect(() => decodeQuery(new Uint8Array(5))).toThrow(DnsFormatError)
    const resp = query('web')
    resp[2] = 0x81
    expect(() => decodeQuery(resp)).toThrow(/response/)
    // A pointer that loops onto itself.
    const loop = query('a')
    loop.set([0xc0, 12], 12)
    expect(() => decodeQuery(loop)).toThrow(DnsFormatError)
  })

  it('survives any bytes: DnsFormatError or a query, nothing else (fuzz)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        try {
          const q = decodeQuery(bytes)
          expect(q.question.name.length).toBeLessThanOrEqual(1100)
        } catch (err) {
          expect(err).toBeInstanceOf(DnsFormatError)
        }
      }),
      { numRuns: 20_000 },
    )
  })

  it('survives mutations of valid queries (fuzz)', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){0,3}$/),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        (name, flips) => {
          const bytes = query(name)
          for (const [at, v] of flips) bytes[at % bytes.length] = v
          try {
            decodeQuery(bytes)
          } catch (err) {
            expect(err).toBeInstanceOf(DnsFormatError)
          }
        },
      ),
      { numRuns: 20_000 },
    )
  })
})

describe('serviceDirectory', () => {
  const dir = serviceDirectory(state)
  it('answers with the scope of the querier’s networks', () => {
    expect(dir.resolve('web', ['front'])).toEqual({ v4: ['10.0.1.2'], v6: [] })
    expect(dir.resolve('www', ['front'])?.v4).toEqual(['10.0.1.2'])
    expect(dir.resolve('web', ['back'])).toBeUndefined()
    expect(dir.resolve('back', ['front'])).toBeUndefined()
    expect(dir.resolve('tasks.web', ['front'])?.v4).toEqual(['10.0.1.5', '10.0.1.6'])
    expect(dir.resolve('db', ['front'])?.v4).toEqual(['10.0.1.8', '10.0.1.9'])
    expect(dir.resolve('db', ['back'])?.v4).toEqual(['10.0.2.8'])
    expect(dir.resolve('web.1.t1', ['front'])?.v4).toEqual(['10.0.1.5'])
    expect(dir.resolve('toolbox', ['front'])?.v4).toEqual(['10.0.1.20'])
    expect(dir.backends('s-web', 'front')).toEqual(['10.0.1.5', '10.0.1.6'])
    expect(dir.vipsOn('front')).toEqual([
      { service: 's-web', vip: '10.0.1.2', backends: ['10.0.1.5', '10.0.1.6'] },
    ])
  })
})

describe('embeddedResolver (this namespace, loopback)', () => {
  let resolver: EmbeddedResolver | undefined
  let upstream: dgram.Socket | undefined
  afterEach(async () => {
    await resolver?.close()
    upstream?.close()
    resolver = undefined
    upstream = undefined
  })

  async function fakeUpstream(): Promise<number> {
    upstream = dgram.createSocket('udp4')
    upstream.on('message', (m, r) => {
      const q = decodeQuery(m)
      const out = Buffer.from(m)
      out[2] = 0x81
      out[3] = 0x80
      if (q.question.name === 'example.test') {
        out[7] = 1
        const a = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 42])
        upstream!.send(Buffer.concat([out, a]), r.port, r.address)
      } else if (q.question.name !== 'silent.test') upstream!.send(out, r.port, r.address)
    })
    await new Promise<void>((r) => upstream!.bind(0, '127.0.0.1', r))
    return upstream.address().port
  }

  function ask(port: number, msg: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      const s = dgram.createSocket('udp4')
      const t = setTimeout(() => {
        s.close()
        reject(new Error('no answer'))
      }, 10_000)
      s.on('message', (m) => {
        clearTimeout(t)
        s.close()
        resolve(new Uint8Array(m))
      })
      s.send(msg, port, '127.0.0.1')
    })
  }

  it('answers swarm names, forwards the rest, FORMERR for garbage, and keeps serving', async () => {
    const up = await fakeUpstream()
    resolver = embeddedResolver({
      directory: serviceDirectory(state),
      upstream: [{ address: '127.0.0.1', port: up }],
      forwardTimeoutMs: 500,
    })
    const port = await resolver.attach({ id: 'c', networks: ['front'], address: '127.0.0.1', port: 0 })
    expect(answers(await ask(port, query('web')))).toEqual({ rcode: 0, tc: false, addresses: ['10.0.1.2'] })
    const t = answers(await ask(port, query('tasks.web')))
    expect(t.addresses.sort()).toEqual(['10.0.1.5', '10.0.1.6'])
    expect(answers(await ask(port, query('tasks.back'))).rcode).toBe(RCODE.NXDOMAIN)
    expect(answers(await ask(port, query('example.test'))).addresses).toEqual(['127.0.0.42'])
    expect(answers(await ask(port, query('silent.test'))).rcode).toBe(RCODE.SERVFAIL)
    expect(answers(await ask(port, query('web', DNS_TYPE.AAAA)))).toEqual({
      rcode: 0,
      tc: false,
      addresses: [],
    })
    const bad = query('web')
    bad[5] = 3 // three questions
    expect(answers(await ask(port, bad)).rcode).toBe(RCODE.FORMERR)
    // A scope change takes effect at once.
    resolver.setNetworks('c', ['back'])
    expect(answers(await ask(port, query('back'))).addresses).toEqual(['10.0.2.2'])
    expect(resolver.stats.malformed).toBe(1)
  })

  it('answers over TCP with length-prefixed messages', async () => {
    resolver = embeddedResolver({ directory: serviceDirectory(state), upstream: [] })
    const port = await resolver.attach({ id: 'c', networks: ['front'], address: '127.0.0.1', port: 0 })
    const c = net.connect(port, '127.0.0.1')
    const q = query('db')
    const head = Buffer.alloc(2)
    head.writeUInt16BE(q.length)
    c.write(Buffer.concat([head, q]))
    const resp = await new Promise<Buffer>((resolve) => {
      let buf = Buffer.alloc(0)
      c.on('data', (d) => {
        buf = Buffer.concat([buf, d])
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) resolve(buf.subarray(2))
      })
    })
    c.destroy()
    expect(answers(resp).addresses.sort()).toEqual(['10.0.1.8', '10.0.1.9'])
  })

  it('truncates a UDP answer over 512 bytes (TC set), whole over TCP', async () => {
    const many: DirectoryState = {
      services: [{ id: 's', name: 'big', endpointMode: 'dnsrr' }],
      tasks: Array.from({ length: 60 }, (_, i) => ({
        id: `t${i}`,
        name: `big.${i}`,
        service: 's',
        addresses: { n: `10.9.0.${i + 1}` },
      })),
    }
    resolver = embeddedResolver({ directory: serviceDirectory(many), upstream: [] })
    const udp = answers((await resolver.answer(query('big'), ['n'], 'udp'))!)
    expect(udp.tc).toBe(true)
    expect(udp.addresses).toEqual([])
    expect(answers((await resolver.answer(query('big'), ['n'], 'tcp'))!).addresses).toHaveLength(60)
  })
})
