import { OverlayError } from './errors.js'
import { Bitmap } from './internal/bitmap.js'

/** The transport protocol of a published port. */
export type PortProtocol = 'tcp' | 'udp' | 'sctp'
/** How a port is published: `ingress` through the routing mesh on every node, `host` on the task's node only. */
export type PublishMode = 'ingress' | 'host'

/** A service's port, as in its endpoint spec. */
export interface PortConfig {
  protocol: PortProtocol
  /** The port the task listens on. */
  targetPort: number
  /** The published port; omitted for ingress means "pick one from the dynamic range". */
  publishedPort?: number
  /** `ingress` (default): reserved cluster-wide, every node answers (routing mesh). `host`: bound only
   * on the nodes running a task; not reserved here (the scheduler checks the node's ports). */
  publishMode?: PublishMode
}

/** The range a {@link portAllocator} hands dynamic published ports out of. */
export interface PortAllocatorOptions {
  /** Range for dynamic published ports. Default [30000, 32767]. */
  dynamicRange?: [number, number]
}

/** Published-port allocation: one space per protocol, conflicts refused naming the holder. */
export interface PortAllocator {
  /**
   * Allocates the ingress ports of `service` and returns the ports with `publishedPort` filled in. If the
   * service already holds ports this is an update: ports it keeps stay (a dynamic port keeps its number),
   * the others are released. All or nothing: on error nothing changes.
   */
  allocate(service: string, ports: PortConfig[]): PortConfig[]
  /** Releases every port `service` holds (no-op if none). */
  release(service: string): void
  /** The service holding `port`/`protocol`, if any. */
  holder(protocol: PortProtocol, port: number): string | undefined
  /** Every reservation, ordered by protocol then port. */
  state(): Array<{ service: string; protocol: PortProtocol; port: number }>
}

const PROTOCOLS: readonly PortProtocol[] = ['tcp', 'udp', 'sctp']

function checkPort(p: unknown, name: string): number {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535)
    throw new RangeError(`${name} must be an integer in 1..65535`)
  return p
}

function checkConfig(
  c: unknown,
  i: number,
): Required<Omit<PortConfig, 'publishedPort'>> & { publishedPort?: number } {
  if (typeof c !== 'object' || c === null) throw new TypeError(`ports[${i}] must be an object`)
  const pc = c as PortConfig
  if (!PROTOCOLS.includes(pc.protocol)) throw new TypeError(`ports[${i}].protocol must be tcp, udp or sctp`)
  checkPort(pc.targetPort, `ports[${i}].targetPort`)
  if (pc.publishedPort !== undefined && pc.publishedPort !== 0)
    checkPort(pc.publishedPort, `ports[${i}].publishedPort`)
  const mode = pc.publishMode ?? 'ingress'
  if (mode !== 'ingress' && mode !== 'host')
    throw new TypeError(`ports[${i}].publishMode must be ingress or host`)
  const out: Required<Omit<PortConfig, 'publishedPort'>> & { publishedPort?: number } = {
    protocol: pc.protocol,
    targetPort: pc.targetPort,
    publishMode: mode,
  }
  if (pc.publishedPort) out.publishedPort = pc.publishedPort
  return out
}

class PortAllocatorImpl implements PortAllocator {
  private readonly owners = new Map<string, string>() // `${protocol}/${port}` -> service
  private readonly byService = new Map<string, PortConfig[]>()
  private readonly dynamic = new Map<PortProtocol, Bitmap>()
  private readonly lo: number
  private readonly hi: number

  constructor(options: PortAllocatorOptions) {
    const [lo, hi] = options.dynamicRange ?? [30000, 32767]
    this.lo = checkPort(lo, 'dynamicRange[0]')
    this.hi = checkPort(hi, 'dynamicRange[1]')
    if (hi < lo) throw new RangeError('dynamicRange[1] must be >= dynamicRange[0]')
    for (const p of PROTOCOLS) this.dynamic.set(p, new Bitmap(hi - lo + 1))
  }

  allocate(service: string, ports: PortConfig[]): PortConfig[] {
    checkService(service)
    if (!Array.isArray(ports)) throw new TypeError('ports must be an array')
    if (ports.length > 65535) throw new RangeError('ports has too many entries')
    const wanted = ports.map(checkConfig)
    const previous = this.byService.get(service) ?? []
    // Release the service's old ports first (remembering them), so an update may keep or move them.
    this.drop(service)
    const taken: Array<{ protocol: PortProtocol; port: number }> = []
    try {
      const out: PortConfig[] = []
      // Explicit ports first, so a dynamic pick never takes a port asked for explicitly in the same spec.
      const order = wanted
        .map((_, i) => i)
        .sort(
          (a, b) =>
            Number(wanted[a]!.publishedPort === undefined) - Number(wanted[b]!.publishedPort === undefined),
        )
      const results = new Array<PortConfig>(wanted.length)
      for (const i of order) {
        const w = wanted[i]!
        if (w.publishMode === 'host') {
          results[i] = { ...w }
          continue
        }
        let port = w.publishedPort
        if (port === undefined) {
          const kept = previous.find(
            (p) =>
              p.protocol === w.protocol &&
              p.targetPort === w.targetPort &&
              (p.publishMode ?? 'ingress') === 'ingress' &&
              p.publishedPort !== undefined &&
              p.publishedPort >= this.lo &&
              p.publishedPort <= this.hi &&
              !this.owners.has(`${p.protocol}/${p.publishedPort}`),
          )
          port = kept?.publishedPort ?? this.pickDynamic(w.protocol)
        }
        this.take(service, w.protocol, port)
        taken.push({ protocol: w.protocol, port })
        results[i] = { ...w, publishedPort: port }
      }
      out.push(...results)
      this.byService.set(service, out)
      return out.map((p) => ({ ...p }))
    } catch (err) {
      for (const t of taken) this.free(t.protocol, t.port)
      // Restore the previous reservation exactly.
      for (const p of previous)
        if ((p.publishMode ?? 'ingress') === 'ingress' && p.publishedPort !== undefined)
          this.take(service, p.protocol, p.publishedPort)
      if (previous.length > 0) this.byService.set(service, previous)
      throw err
    }
  }

  release(service: string): void {
    checkService(service)
    this.drop(service)
  }

  holder(protocol: PortProtocol, port: number): string | undefined {
    if (!PROTOCOLS.includes(protocol)) throw new TypeError('protocol must be tcp, udp or sctp')
    checkPort(port, 'port')
    return this.owners.get(`${protocol}/${port}`)
  }

  state(): Array<{ service: string; protocol: PortProtocol; port: number }> {
    const out: Array<{ service: string; protocol: PortProtocol; port: number }> = []
    for (const [key, service] of this.owners) {
      const [protocol, port] = key.split('/') as [PortProtocol, string]
      out.push({ service, protocol, port: Number(port) })
    }
    return out.sort(
      (a, b) => PROTOCOLS.indexOf(a.protocol) - PROTOCOLS.indexOf(b.protocol) || a.port - b.port,
    )
  }

  private pickDynamic(protocol: PortProtocol): number {
    const bits = this.dynamic.get(protocol)!
    const i = bits.lowest()
    if (i < 0)
      throw new OverlayError('POOL_EXHAUSTED', `no dynamic ${protocol} port left in ${this.lo}-${this.hi}`)
    bits.clear(i) // take() marks it
    return this.lo + i
  }

  private take(service: string, protocol: PortProtocol, port: number): void {
    const key = `${protocol}/${port}`
    const held = this.owners.get(key)
    if (held !== undefined)
      throw new OverlayError(
        'IN_USE',
        held === service
          ? `port ${port}/${protocol} is published twice by service ${service}`
          : `port ${port}/${protocol} is already in use by service ${held} as an ingress port`,
        { holder: held },
      )
    this.owners.set(key, service)
    if (port >= this.lo && port <= this.hi) this.dynamic.get(protocol)!.set(port - this.lo)
  }

  private free(protocol: PortProtocol, port: number): void {
    this.owners.delete(`${protocol}/${port}`)
    if (port >= this.lo && port <= this.hi) this.dynamic.get(protocol)!.clear(port - this.lo)
  }

  private drop(service: string): void {
    const held = this.byService.get(service)
    if (held === undefined) return
    for (const p of held)
      if ((p.publishMode ?? 'ingress') === 'ingress' && p.publishedPort !== undefined)
        this.free(p.protocol, p.publishedPort)
    this.byService.delete(service)
  }
}

function checkService(service: unknown): void {
  if (typeof service !== 'string' || service.length === 0 || service.length > 256)
    throw new TypeError('service must be a non-empty string of at most 256 characters')
}

/** Creates a published-port allocator (dynamic ports from 30000-32767 by default). */
export function portAllocator(options: PortAllocatorOptions = {}): PortAllocator {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  return new PortAllocatorImpl(options)
}
