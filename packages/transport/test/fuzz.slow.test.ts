import { connect, type Socket } from 'node:net'
import { Packr } from 'msgpackr'
import { afterAll, describe, expect, it } from 'vitest'
import { type Connection, rpcClient, rpcSession, type TransportError, tcpTransport } from '../src/index.js'
import { seededRandom } from '../src/internal/random.js'

// At least 100,000 frames by default (it takes seconds); SWARMKIT_SLOW=1 sends a million.
const FRAMES = process.env.SWARMKIT_SLOW ? 1_000_000 : 100_000
const FRAMES_PER_CONNECTION = 100
const PARALLEL = 8
const SEED = Number(process.env.SWARMKIT_FUZZ_SEED ?? 20_261_125)
const MAX_FRAME = 64 * 1024

const packer = new Packr({ useRecords: false })

describe('fuzzing a TCP listener', () => {
  const server = tcpTransport({ maxFrameBytes: MAX_FRAME })
  const clientTransport = tcpTransport({ maxFrameBytes: MAX_FRAME })
  afterAll(async () => {
    await clientTransport.close()
    await server.close()
  })

  it(`survives ${FRAMES}+ random and mutated frames while a good client keeps working (seed ${SEED})`, async () => {
    const random = seededRandom(SEED)
    const int = (n: number) => Math.floor(random() * n)
    const listener = await server.listen('127.0.0.1:0')
    const [host, port] = listener.address.split(':')

    let framesParsed = 0
    const closeErrors: (TransportError | undefined)[] = []
    const gracefulLiars: string[] = []
    let goodConnection: Connection | undefined
    listener.on('connection:open', (c) => {
      goodConnection ??= c // the good client connects first
      c.on('frame:receive', () => {
        framesParsed++
      })
      rpcSession(c, {
        methods: {
          echo: { kind: 'call', handler: (p) => p },
          note: { kind: 'notify', handler: () => {} },
          three: { kind: 'stream', handler: () => [1, 2, 3] },
        },
      })
      c.on('connection:close', (e) => {
        if (c === goodConnection) return
        // A length that lied can, rarely, swallow the rest of the stream in step: a clean close.
        if (e === undefined && liars.has(c.remoteAddress)) gracefulLiars.push(c.remoteAddress)
        else closeErrors.push(e)
      })
    })

    const good = rpcClient({ transport: clientTransport, address: listener.address, reconnect: false })
    expect(await good.call('echo', 'hello')).toBe('hello')

    // Valid messages of every type, to mutate.
    const templates = [
      [0, 'note', { a: 1 }],
      [0, 'nope', 'x'],
      [1, 1, 'echo', 'payload'],
      [1, 2, 'echo', { nested: [1, 2, { deep: Uint8Array.of(1, 2, 3) }] }],
      [1, 3, 'missing', null],
      [2, 5, 'result'],
      [3, 6, { name: 'Error', message: 'x' }],
      [4, 7, 'three', null, 8],
      [5, 8, 'item'],
      [6, 9],
      [7, 7, 4],
      [8, 7],
    ].map((t) => Uint8Array.from(packer.pack(t)))

    function randomValue(depth = 0): unknown {
      switch (int(depth > 2 ? 6 : 9)) {
        case 0:
          return int(1 << 30) - (1 << 29)
        case 1:
          return random() * 1e9
        case 2:
          return 'x'.repeat(int(40))
        case 3:
          return random() < 0.5
        case 4:
          return null
        case 5:
          return Uint8Array.from({ length: int(64) }, () => int(256))
        case 6:
          return Array.from({ length: int(5) }, () => randomValue(depth + 1))
        case 7:
          return Object.fromEntries(
            Array.from({ length: int(5) }, (_, i) => [`k${i}`, randomValue(depth + 1)]),
          )
        default:
          return undefined
      }
    }

    const methods = ['echo', 'note', 'three', 'nope']
    let nextId = 1
    /** A well-formed message with random contents: the server must handle it and go on. */
    function semantic(): Uint8Array {
      // Now and then a method name over the 256-character limit: a protocol violation.
      const method = random() < 0.002 ? 'x'.repeat(257) : methods[int(methods.length)]!
      const id = random() < 0.9 ? nextId++ : int(4) + 1
      const message = [
        [0, method, randomValue()],
        [1, id, method, randomValue()],
        [2, id, randomValue()],
        [3, id, randomValue()],
        [4, id, method, randomValue(), 1 + int(100)],
        [5, id, randomValue()],
        [6, id],
        [7, id, 1 + int(100)],
        [8, id],
      ][int(9)]!
      return Uint8Array.from(packer.pack(message))
    }

    /** Anything at all: random bytes, or a valid message with bytes flipped, cut or added. */
    function structural(): Uint8Array {
      const kind = int(5)
      if (kind < 2) {
        const out = new Uint8Array(int(64))
        for (let i = 0; i < out.length; i++) out[i] = int(256)
        return out
      }
      const base = templates[int(templates.length)]!
      const out = Uint8Array.from(base)
      if (kind === 2) {
        for (let i = 0, n = 1 + int(3); i < n; i++) out[int(out.length)] = int(256)
        return out
      }
      if (kind === 3)
        return random() < 0.5
          ? out.subarray(0, int(out.length))
          : Buffer.concat([out, Uint8Array.of(int(256))])
      // A huge declared length inside the msgpack (array32/str32/bin32/map32 headers).
      const header = [0xdd, 0xdb, 0xc6, 0xdf][int(4)]!
      return Uint8Array.of(header, 0x7f, 0xff, 0xff, 0xff, ...out.subarray(0, 4))
    }

    function frameBody(): Uint8Array {
      return random() < 0.02 ? structural() : semantic()
    }

    let lied = false
    const liars = new Set<string>()
    function wireFrame(body: Uint8Array): Buffer {
      const h = Buffer.alloc(4)
      const lie = int(400)
      if (lie < 2) lied = true
      if (lie === 0)
        h.writeUInt32BE(MAX_FRAME + 1 + int(1 << 20)) // oversized
      else if (lie === 1)
        h.writeUInt32BE(body.length + 1 + int(100)) // truncated at the end
      else h.writeUInt32BE(body.length)
      return Buffer.concat([h, body])
    }

    async function attack(): Promise<void> {
      const socket: Socket = connect({ host: host!, port: Number(port) })
      socket.on('error', () => {})
      socket.resume() // read (and drop) the answers, so the server's close is seen
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve())
        socket.once('error', reject)
      })
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
      const parts: Buffer[] = []
      lied = false
      for (let i = 0; i < FRAMES_PER_CONNECTION - 1; i++) parts.push(wireFrame(frameBody()))
      if (lied) liars.add(`127.0.0.1:${socket.localPort}`)
      // A frame cut short: with the framing in step, every connection ends bad.
      parts.push(Buffer.from([0, 0, 0, 10, 0xc1]))
      socket.end(Buffer.concat(parts))
      await closed
    }

    let sent = 0
    let connections = 0
    let goodCalls = 0
    try {
      while (sent < FRAMES || framesParsed < FRAMES) {
        await Promise.all(Array.from({ length: PARALLEL }, () => attack()))
        sent += PARALLEL * FRAMES_PER_CONNECTION
        connections += PARALLEL
        if (connections % (PARALLEL * 10) === 0) {
          const tag = `check-${connections}`
          expect(await good.call('echo', tag)).toBe(tag)
          goodCalls++
        }
      }
      // Wait until the server has closed every fuzzing connection.
      const deadline = Date.now() + 20_000
      while (closeErrors.length < connections && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 5))
    } catch (error) {
      console.error(`fuzz failed with seed ${SEED} (rerun with SWARMKIT_FUZZ_SEED=${SEED})`)
      throw error
    }

    expect(sent).toBeGreaterThanOrEqual(FRAMES)
    expect(goodCalls).toBeGreaterThan(0)
    expect(good.connected).toBe(true)
    expect(await good.call('echo', 'still here')).toBe('still here')
    // Every fuzzing connection was closed by the server with an error it could name.
    expect(closeErrors.length + gracefulLiars.length).toBe(connections)
    const codes = new Set(closeErrors.map((e) => e?.code))
    for (const code of codes) expect(['BAD_FRAME', 'FRAME_TOO_LARGE']).toContain(code)
    // At least FRAMES of them got past the framing into the decoder.
    console.log(`fuzz: ${sent} frames sent on ${connections} connections, ${framesParsed} decoded`)
    expect(framesParsed).toBeGreaterThanOrEqual(FRAMES)
    expect(goodConnection?.closed).toBe(false)
    await good.close()
  }, 300_000)
})
