import dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import type net from 'node:net'
import { EventEmitter } from 'eventemitter3'
import {
  DNS_TYPE,
  type DnsAnswer,
  type DnsQuery,
  decodeHeader,
  decodeQuery,
  encodeFailure,
  encodeResponse,
  RCODE,
  truncate,
} from './dns-wire.js'
import { OverlayError } from './errors.js'
import { parseIp } from './internal/ip.js'
import { socketsInNamespace } from './internal/netns-socket.js'
import type { Resolution } from './service-directory.js'

/** What the resolver asks for a name (a {@link ServiceDirectory} fits). */
export interface NameSource {
  resolve(name: string, networks: readonly string[]): Resolution | undefined
}

/** How an {@link embeddedResolver} finds swarm names and forwards the rest, with its limits. */
export interface EmbeddedResolverOptions {
  /** Where swarm names come from, with their scope (usually a `serviceDirectory()`). */
  directory: NameSource
  /**
   * The node's own resolvers, which get every query that is not a swarm name. Default: the `nameserver`
   * lines of /etc/resolv.conf (port 53), without loopback addresses of 127.0.0.11.
   */
  upstream?: Array<{ address: string; port?: number }>
  /** TTL of the answers, seconds. Default 600 (Docker's). */
  ttl?: number
  /** A forwarded query gets SERVFAIL after this long, ms. Default 3000. */
  forwardTimeoutMs?: number
  /** Forwarded queries in flight at once (more are answered SERVFAIL). Default 1024. */
  maxInflight?: number
  /** TCP connections per sandbox at once (more are closed). Default 64. */
  maxTcpConnections?: number
  /** A TCP connection with no query for this long is closed, ms. Default 10000. */
  tcpIdleMs?: number
}

/** Where a sandbox's resolver listens. */
export interface ResolverAttachment {
  /** Sandbox ID (usually the task ID). */
  id: string
  /** The networks the sandbox is on: it resolves names of these only. */
  networks: string[]
  /** Its network namespace (name under /var/run/netns). Absent: this process's own namespace (tests). */
  namespace?: string
  /** Default `127.0.0.11`. */
  address?: string
  /** Default 53 (0 picks a free port, reported back). */
  port?: number
}

/** What an {@link EmbeddedResolver} reports: bad packets and failed forwards (neither stops it). */
export interface ResolverEvents {
  /** A packet was not valid DNS (it got FORMERR when it had a header, else nothing). */
  'query:malformed': (e: { sandbox: string; error: Error }) => void
  /** A forwarded query failed (timeout or an upstream error); the client got SERVFAIL. */
  'forward:failed': (e: { sandbox: string; error: Error }) => void
}

/** Docker's embedded DNS server (127.0.0.11 in every sandbox): swarm names scoped to the sandbox's networks, the rest forwarded. */
export interface EmbeddedResolver extends EventEmitter<ResolverEvents> {
  /** Starts answering inside a sandbox; resolves with the bound port. */
  attach(sandbox: ResolverAttachment, options?: { signal?: AbortSignal }): Promise<number>
  /** Changes the networks a sandbox resolves (a network attached or detached). */
  setNetworks(id: string, networks: string[]): void
  /** Stops answering in a sandbox (no-op if unknown). */
  detach(id: string): Promise<void>
  /** Answers one query for `networks` as the sockets do (for tests and benchmarks). */
  answer(
    query: Uint8Array,
    networks: readonly string[],
    transport?: 'udp' | 'tcp',
  ): Promise<Uint8Array | undefined>
  /** Counters since start. */
  readonly stats: { answered: number; forwarded: number; malformed: number; failed: number }
  /** Detaches every sandbox. */
  close(): Promise<void>
}

interface Attached {
  networks: string[]
  udp: dgram.Socket
  tcp: net.Server
  conns: Set<net.Socket>
}

const SWARM_TYPES = new Set<number>([DNS_TYPE.A, DNS_TYPE.AAAA])

class Resolver extends EventEmitter<ResolverEvents> implements EmbeddedResolver {
  readonly stats = { answered: 0, forwarded: 0, malformed: 0, failed: 0 }
  private readonly directory: NameSource
  private readonly upstream: Array<{ address: string; port: number }>
  private readonly ttl: number
  private readonly forwardTimeoutMs: number
  private readonly maxInflight: number
  private readonly maxTcp: number
  private readonly tcpIdleMs: number
  private readonly sandboxes = new Map<string, Attached>()
  private inflight = 0
  private rotation = 0
  private nextUpstream = 0

  constructor(o: EmbeddedResolverOptions) {
    super()
    if (typeof o !== 'object' || o === null) throw new TypeError('options must be an object')
    if (typeof o.directory?.resolve !== 'function')
      throw new TypeError('options.directory must have a resolve(name, networks) method')
    this.directory = o.directory
    this.upstream = (o.upstream ?? systemResolvers()).map((u, i) => {
      parseIp(u.address, `options.upstream[${i}].address`)
      const port = u.port ?? 53
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw new RangeError(`options.upstream[${i}].port must be an integer in 1..65535`)
      return { address: u.address, port }
    })
    this.ttl = positive(o.ttl ?? 600, 'options.ttl', 2 ** 31 - 1)
    this.forwardTimeoutMs = positive(o.forwardTimeoutMs ?? 3000, 'options.forwardTimeoutMs', 60_000)
    this.maxInflight = positive(o.maxInflight ?? 1024, 'options.maxInflight', 1 << 20)
    this.maxTcp = positive(o.maxTcpConnections ?? 64, 'options.maxTcpConnections', 1 << 16)
    this.tcpIdleMs = positive(o.tcpIdleMs ?? 10_000, 'options.tcpIdleMs', 3_600_000)
  }

  async attach(s: ResolverAttachment, options?: { signal?: AbortSignal }): Promise<number> {
    if (typeof s !== 'object' || s === null) throw new TypeError('sandbox must be an object')
    if (typeof s.id !== 'string' || s.id.length === 0)
      throw new TypeError('sandbox.id must be a non-empty string')
    checkNetworks(s.networks)
    if (s.namespace !== undefined && !/^[\w.-]{1,64}$/.test(s.namespace))
      throw new TypeError('sandbox.namespace must be a network namespace name')
    const address = s.address ?? '127.0.0.11'
    parseIp(address, 'sandbox.address')
    const port = s.port ?? 53
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new RangeError('sandbox.port must be an integer in 0..65535')
    if (this.sandboxes.has(s.id)) await this.detach(s.id)
    const { udp, tcp } =
      s.namespace === undefined
        ? await bindHere(address, port)
        : await socketsInNamespace(s.namespace, address, port, options)
    const entry: Attached = { networks: [...s.networks], udp, tcp, conns: new Set() }
    this.sandboxes.set(s.id, entry)
    udp.on('error', () => {})
    udp.on('message', (msg, rinfo) => {
      void this.answerFor(s.id, entry, msg, 'udp').then((out) => {
        if (out !== undefined && this.sandboxes.get(s.id) === entry)
          udp.send(out, rinfo.port, rinfo.address, () => {})
      })
    })
    tcp.on('error', () => {})
    tcp.on('connection', (c) => this.serveTcp(s.id, entry, c))
    return udp.address().port
  }

  setNetworks(id: string, networks: string[]): void {
    checkNetworks(networks)
    const entry = this.sandboxes.get(id)
    if (entry === undefined) throw new OverlayError('NOT_FOUND', `sandbox ${id} has no resolver attached`)
    entry.networks = [...networks]
  }

  async detach(id: string): Promise<void> {
    const entry = this.sandboxes.get(id)
    if (entry === undefined) return
    this.sandboxes.delete(id)
    for (const c of entry.conns) c.destroy()
    await Promise.all([
      new Promise<void>((r) => entry.udp.close(() => r())),
      new Promise<void>((r) => entry.tcp.close(() => r())),
    ])
  }

  async close(): Promise<void> {
    await Promise.all([...this.sandboxes.keys()].map((id) => this.detach(id)))
  }

  answer(query: Uint8Array, networks: readonly string[], transport: 'udp' | 'tcp' = 'udp') {
    return this.respond('test', networks, query, transport)
  }

  private answerFor(id: string, entry: Attached, msg: Uint8Array, transport: 'udp' | 'tcp') {
    return this.respond(id, entry.networks, msg, transport)
  }

  private serveTcp(id: string, entry: Attached, c: net.Socket): void {
    if (entry.conns.size >= this.maxTcp) {
      c.destroy()
      return
    }
    entry.conns.add(c)
    c.on('close', () => entry.conns.delete(c))
    c.on('error', () => {})
    c.setTimeout(this.tcpIdleMs, () => c.destroy())
    let buf: Buffer = Buffer.alloc(0)
    c.on('data', (d: Buffer) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d])
      // A stream of length-prefixed messages (RFC 7766); a length of 0 or one over the limit ends it.
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0)
        if (len < 12) {
          c.destroy()
          return
        }
        if (buf.length < 2 + len) break
        const msg = buf.subarray(2, 2 + len)
        buf = buf.subarray(2 + len)
        void this.respond(id, entry.networks, msg, 'tcp').then((out) => {
          if (out === undefined || c.destroyed) return
          const head = Buffer.alloc(2)
          head.writeUInt16BE(out.length)
          c.write(Buffer.concat([head, out]))
        })
      }
    })
  }

  private async respond(
    sandbox: string,
    networks: readonly string[],
    msg: Uint8Array,
    transport: 'udp' | 'tcp',
  ): Promise<Uint8Array | undefined> {
    let query: DnsQuery
    try {
      query = decodeQuery(msg)
    } catch (err) {
      this.stats.malformed++
      this.emit('query:malformed', { sandbox, error: err as Error })
      if (msg.length < 12) return undefined
      // A header was there: say FORMERR to that ID (unless it was a response: never answer those).
      if ((msg[2]! & 0x80) !== 0) return undefined
      return encodeFailure((msg[0]! << 8) | msg[1]!, RCODE.FORMERR)
    }
    if (query.opcode !== 0) return encodeFailure(query.id, RCODE.NOTIMP)
    const name = query.question.name
    const found = this.directory.resolve(name, networks)
    if (found !== undefined) {
      this.stats.answered++
      const answers: DnsAnswer[] = []
      if (query.question.type === DNS_TYPE.A || query.question.type === DNS_TYPE.AAAA) {
        const list = query.question.type === DNS_TYPE.A ? found.v4 : found.v6
        // Rotate the order per query, so clients that take the first address spread over the tasks.
        const start = list.length > 1 ? this.rotation++ % list.length : 0
        for (let i = 0; i < list.length; i++) {
          const a = parseIp(list[(start + i) % list.length]!, 'address')
          answers.push({ type: query.question.type, ttl: this.ttl, data: addressBytes(a.family, a.value) })
        }
      }
      const out = encodeResponse(msg, query, RCODE.NOERROR, answers)
      return transport === 'udp' ? truncate(out, query, query.udpSize) : out
    }
    if (SWARM_TYPES.has(query.question.type) && /^tasks\./.test(name) && name.split('.').length === 2) {
      // tasks.X of a name this sandbox cannot see is swarm's to answer: never leak it upstream.
      this.stats.answered++
      return encodeResponse(msg, query, RCODE.NXDOMAIN)
    }
    return this.forward(sandbox, msg, query)
  }

  private async forward(sandbox: string, msg: Uint8Array, query: DnsQuery): Promise<Uint8Array> {
    if (this.upstream.length === 0 || this.inflight >= this.maxInflight) {
      this.stats.failed++
      return encodeResponse(msg, query, RCODE.SERVFAIL)
    }
    this.inflight++
    this.stats.forwarded++
    const up = this.upstream[this.nextUpstream++ % this.upstream.length]!
    try {
      return await new Promise<Uint8Array>((resolve, reject) => {
        // A socket per forwarded query: its random port and the query ID are what a spoofer must guess.
        const sock = dgram.createSocket(up.address.includes(':') ? 'udp6' : 'udp4')
        const timer = setTimeout(() => {
          sock.close()
          reject(new OverlayError('COMMAND_FAILED', `upstream ${up.address}:${up.port} did not answer`))
        }, this.forwardTimeoutMs)
        sock.on('error', (err) => {
          clearTimeout(timer)
          sock.close()
          reject(err)
        })
        sock.on('message', (resp, rinfo) => {
          if (rinfo.address !== up.address || rinfo.port !== up.port) return
          try {
            const h = decodeHeader(resp)
            if (!h.response || h.id !== query.id) return
          } catch {
            return
          }
          clearTimeout(timer)
          sock.close()
          resolve(new Uint8Array(resp))
        })
        sock.send(msg, up.port, up.address)
      })
    } catch (err) {
      this.stats.failed++
      this.emit('forward:failed', { sandbox, error: err as Error })
      return encodeResponse(msg, query, RCODE.SERVFAIL)
    } finally {
      this.inflight--
    }
  }
}

/**
 * Binds UDP and TCP on one port. With port 0 the kernel picks the UDP port, which TCP may already hold for
 * another socket: pick again a few times instead of failing (a race, not an error).
 */
async function bindHere(address: string, port: number): Promise<{ udp: dgram.Socket; tcp: net.Server }> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await bindOnce(address, port)
    } catch (err) {
      if (port !== 0 || attempt >= 8 || !/EADDRINUSE/.test((err as Error).message)) throw err
    }
  }
}

function bindOnce(address: string, port: number): Promise<{ udp: dgram.Socket; tcp: net.Server }> {
  return import('node:net').then(
    (netMod) =>
      new Promise((resolve, reject) => {
        const udp = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4')
        udp.once('error', (err) =>
          reject(new OverlayError('BIND_FAILED', `cannot bind ${address}:${port}: ${err.message}`)),
        )
        udp.bind(port, address, () => {
          const tcp = netMod.createServer()
          tcp.once('error', (err) => {
            udp.close()
            reject(new OverlayError('BIND_FAILED', `cannot bind ${address}:${port}/tcp: ${err.message}`))
          })
          tcp.listen(udp.address().port, address, () => resolve({ udp, tcp }))
        })
      }),
  )
}

function addressBytes(family: 4 | 6, value: bigint): Uint8Array {
  const n = family === 4 ? 4 : 16
  const out = new Uint8Array(n)
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn)
    value >>= 8n
  }
  return out
}

function checkNetworks(networks: unknown): void {
  if (!Array.isArray(networks) || networks.some((n) => typeof n !== 'string'))
    throw new TypeError('networks must be an array of network IDs')
}

function positive(v: number, name: string, max: number): number {
  if (!Number.isInteger(v) || v < 1 || v > max)
    throw new RangeError(`${name} must be an integer in 1..${max}`)
  return v
}

/** The nameservers of /etc/resolv.conf, without 127.0.0.11 (which would loop back to us). */
export function systemResolvers(path = '/etc/resolv.conf'): Array<{ address: string; port: number }> {
  let text = ''
  try {
    text = readFileSync(path, 'utf8').slice(0, 64 * 1024)
  } catch {
    return []
  }
  const out: Array<{ address: string; port: number }> = []
  for (const m of text.matchAll(/^\s*nameserver\s+(\S+)/gm)) {
    const a = m[1]!
    try {
      parseIp(a, 'nameserver')
    } catch {
      continue
    }
    if (a !== '127.0.0.11') out.push({ address: a, port: 53 })
  }
  return out
}

/**
 * Docker's embedded DNS server for swarm tasks: answers at 127.0.0.11:53 (UDP and TCP) inside each task's
 * namespace, from the sockets this process owns there; swarm names from the directory with the sandbox's
 * networks as scope, everything else forwarded to the node's resolvers. Every packet is decoded with
 * limits; bad ones get FORMERR (or nothing), never crash the node. Needs root to attach in a namespace.
 */
export function embeddedResolver(options: EmbeddedResolverOptions): EmbeddedResolver {
  return new Resolver(options)
}
