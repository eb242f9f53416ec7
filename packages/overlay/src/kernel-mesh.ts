import { EventEmitter } from 'eventemitter3'
import { OverlayError } from './errors.js'
import { execRunner, missingCapabilities } from './internal/exec.js'
import { type Family, parseIp } from './internal/ip.js'
import { checkService, listeningOf } from './internal/mesh-spec.js'
import { type NftPort, nftScript, TABLE_NAME } from './internal/nft.js'
import type {
  CloseOptions,
  MeshEndpoint,
  MeshService,
  RoutingMesh,
  RoutingMeshEvents,
  RoutingMeshOptions,
} from './mesh.js'

/** Runs `nft` (or `ip netns exec … nft`, or `sh` for a sysctl) and resolves with its stdout. Injectable. */
export type NftRunner = (
  file: 'nft' | 'ip' | 'sh',
  args: string[],
  options?: { signal?: AbortSignal; input?: string },
) => Promise<string>

/** Options of the kernel routing mesh (`routingMesh({ mode: 'kernel', kernel: { … } })`). */
export interface KernelMeshOptions {
  /**
   * The nftables table (family `inet`) the mesh owns and replaces whole on every change: a lowercase letter
   * then up to 63 lowercase letters, digits or `_`. Default `swarmkit_mesh_` and the host address with its
   * dots or colons as `_`. Each mesh in a namespace needs its own table.
   */
  table?: string
  /** Program this network namespace (by name, as `ip netns exec`) instead of the current one. */
  namespace?: string
  /**
   * Turn on IP forwarding in the namespace (`net.ipv4.ip_forward`, or `net.ipv6.conf.all.forwarding`), as a
   * swarm node does: needed for clients on other hosts to reach endpoints on other hosts. Default true for
   * an IPv4 host; false for IPv6, where turning it on would lift the Linux driver's isolation of IPv6
   * overlay networks (which relies on IPv6 forwarding being off).
   */
  forwarding?: boolean
  /**
   * Masquerade translated flows that leave through a real interface (default true), so replies come back
   * through this node. False keeps the client's source address (host-mode publishing): the endpoint must
   * then route its replies through this node (its default gateway is here).
   */
  masquerade?: boolean
  /** Command runner (default: execFile). */
  exec?: NftRunner
}

const MAX_OUTPUT = 4 * 1024 * 1024
const defaultRunner: NftRunner = execRunner(MAX_OUTPUT)

interface Entry {
  spec: MeshService
  pool: MeshEndpoint[]
}

/**
 * The routing mesh in the kernel: one nftables table whose NAT chains send each new connection (UDP: flow)
 * to the published address and port on to the next healthy endpoint, round-robin (`numgen inc`), and
 * masquerade what leaves through a real interface so replies come back through this node. Bytes never
 * enter this process. Reconciled whole and atomically on every change; `close()` deletes the table.
 */
export class KernelMesh extends EventEmitter<RoutingMeshEvents> implements RoutingMesh {
  readonly host: string
  readonly mode = 'kernel' as const
  /** The nftables table this mesh owns. */
  readonly table: string
  private readonly node: string | undefined
  private readonly family: Family
  private readonly namespace: string | undefined
  private readonly forwarding: boolean
  private readonly masquerade: boolean
  private readonly run: NftRunner
  private readonly entries = new Map<string, Entry>()
  private ready: Promise<void> | undefined
  private queue: Promise<unknown> = Promise.resolve()
  private closed = false

  constructor(options: RoutingMeshOptions) {
    super()
    const parsed = parseIp(options.host, 'options.host')
    this.family = parsed.family
    this.host = options.host
    if (options.node !== undefined && (typeof options.node !== 'string' || options.node.length === 0))
      throw new TypeError('options.node must be a non-empty string')
    this.node = options.node
    const k = options.kernel ?? {}
    if (typeof k !== 'object' || k === null) throw new TypeError('options.kernel must be an object')
    this.table = k.table ?? `swarmkit_mesh_${options.host.toLowerCase().replace(/[.:]/g, '_')}`.slice(0, 64)
    if (typeof this.table !== 'string' || !TABLE_NAME.test(this.table))
      throw new TypeError(
        'options.kernel.table must be a lowercase letter then up to 63 lowercase letters, digits or _',
      )
    if (k.namespace !== undefined && (typeof k.namespace !== 'string' || !/^[\w.-]{1,64}$/.test(k.namespace)))
      throw new TypeError('options.kernel.namespace must be a network namespace name')
    this.namespace = k.namespace
    if (k.forwarding !== undefined && typeof k.forwarding !== 'boolean')
      throw new TypeError('options.kernel.forwarding must be a boolean')
    this.forwarding = k.forwarding ?? this.family === 4
    if (k.masquerade !== undefined && typeof k.masquerade !== 'boolean')
      throw new TypeError('options.kernel.masquerade must be a boolean')
    this.masquerade = k.masquerade ?? true
    if (k.exec !== undefined && typeof k.exec !== 'function')
      throw new TypeError('options.kernel.exec must be a function')
    this.run = k.exec ?? defaultRunner
  }

  async publish(service: MeshService, options?: CloseOptions): Promise<void> {
    const spec = checkService(service)
    options?.signal?.throwIfAborted()
    if (this.closed) throw new OverlayError('CLOSED', 'the routing mesh is closed')
    if (spec.publishMode === 'host' && this.node === undefined)
      throw new TypeError('host-mode ports need options.node (this node ID) on the routing mesh')
    for (const [i, e] of spec.endpoints.entries())
      if (parseIp(e.address, `service.endpoints[${i}].address`).family !== this.family)
        throw new RangeError(
          `service.endpoints[${i}].address must be an IPv${this.family} address like options.host (the kernel mesh translates within one family)`,
        )
    const key = `${spec.protocol}/${spec.publishedPort}`
    const before = this.entries.get(key)
    if (before !== undefined && before.spec.service !== spec.service)
      throw new OverlayError(
        'IN_USE',
        `port ${spec.publishedPort}/${spec.protocol} is already published by service ${before.spec.service}`,
        { holder: before.spec.service },
      )
    const local =
      spec.publishMode === 'host' ? spec.endpoints.filter((e) => e.node === this.node) : spec.endpoints
    if (spec.publishMode === 'host' && local.length === 0) {
      if (before !== undefined) await this.unpublish(spec.protocol, spec.publishedPort, options)
      return
    }
    const entry: Entry = { spec, pool: local.filter((e) => e.healthy !== false) }
    this.entries.set(key, entry)
    try {
      await this.reconcile(options)
    } catch (err) {
      // The transaction failed whole: the kernel still has the previous table; so does this object.
      if (this.entries.get(key) === entry) {
        if (before === undefined) this.entries.delete(key)
        else this.entries.set(key, before)
      }
      throw err
    }
    if (before === undefined && this.entries.get(key) === entry)
      this.emit('port:bound', { protocol: spec.protocol, port: spec.publishedPort, service: spec.service })
  }

  async unpublish(protocol: 'tcp' | 'udp', port: number, options?: CloseOptions): Promise<void> {
    if (protocol !== 'tcp' && protocol !== 'udp') throw new TypeError('protocol must be tcp or udp')
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      throw new RangeError('port must be an integer in 1..65535')
    options?.signal?.throwIfAborted()
    const key = `${protocol}/${port}`
    const entry = this.entries.get(key)
    if (entry === undefined) return
    this.entries.delete(key)
    try {
      await this.reconcile(options)
    } catch (err) {
      if (!this.entries.has(key)) this.entries.set(key, entry)
      throw err
    }
    this.emit('port:unbound', { protocol, port, service: entry.spec.service })
  }

  listening(): Array<{ protocol: 'tcp' | 'udp'; port: number; service: string }> {
    return listeningOf(this.entries.values())
  }

  /** Deletes the table (whatever is in it, a crashed predecessor's included). */
  async close(options?: CloseOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    this.closed = true
    this.entries.clear()
    await this.reconcile(options)
  }

  /** The `nft -f` script for the current state (what the next reconcile applies). */
  script(): string {
    const ports: NftPort[] = [...this.entries.values()].map((e) => ({
      protocol: e.spec.protocol,
      port: e.spec.publishedPort,
      endpoints: e.pool.map((p) => ({ address: p.address, port: p.port })),
    }))
    const unspecified = this.family === 4 ? this.host === '0.0.0.0' : /^[0:]+$/.test(this.host)
    return nftScript({
      name: this.table,
      family: this.family,
      host: unspecified ? undefined : this.host,
      masquerade: this.masquerade,
      ports,
    })
  }

  // One nft transaction at a time, each writing the state current when it runs (so a burst of publishes
  // ends with the last state applied).
  private reconcile(options?: CloseOptions): Promise<void> {
    this.ready ??= this.check()
    const ready = this.ready
    const step = async () => {
      await ready
      options?.signal?.throwIfAborted()
      await this.nft(['-f', '-'], this.script(), options)
    }
    const next = this.queue.then(step, step)
    this.queue = next.catch(() => {})
    return next
  }

  private async check(): Promise<void> {
    if (process.platform !== 'linux')
      throw new OverlayError(
        'UNSUPPORTED',
        `the kernel routing mesh needs Linux (this is ${process.platform}); use mode 'userspace'`,
      )
    // Injected runners are trusted to stand in for the kernel; the capability check is for the real one.
    if (this.run === defaultRunner) {
      const missing = await missingCapabilities(this.namespace !== undefined)
      if (missing.length > 0)
        throw new OverlayError(
          'PERMISSION_DENIED',
          `the kernel routing mesh needs root (missing ${missing.join(' and ')}); run it as root, or use mode 'userspace'`,
        )
    }
    await this.nft(['--version'])
    if (this.forwarding) {
      const key = this.family === 4 ? 'net/ipv4/ip_forward' : 'net/ipv6/conf/all/forwarding'
      const write = ['-c', `echo 1 > /proc/sys/${key}`]
      const args = this.namespace === undefined ? write : ['netns', 'exec', this.namespace, 'sh', ...write]
      await this.run(this.namespace === undefined ? 'sh' : 'ip', args).catch((err) => {
        throw this.failure(`sysctl ${key}=1`, err)
      })
    }
  }

  private async nft(args: string[], input?: string, options?: CloseOptions): Promise<string> {
    const full = this.namespace === undefined ? args : ['netns', 'exec', this.namespace, 'nft', ...args]
    const run: { signal?: AbortSignal; input?: string } = {}
    if (options?.signal !== undefined) run.signal = options.signal
    if (input !== undefined) run.input = input
    try {
      return await this.run(this.namespace === undefined ? 'nft' : 'ip', full, run)
    } catch (err) {
      throw this.failure(`nft ${args.join(' ')}`, err)
    }
  }

  private failure(what: string, err: unknown): OverlayError {
    if (err instanceof OverlayError) return err
    const e = err as NodeJS.ErrnoException & { stderr?: string }
    const detail = String(e.stderr ?? '').trim() || String(e.message)
    if (e.code === 'ENOENT' || /nft.*(not found|No such file)/i.test(detail))
      return new OverlayError(
        'UNSUPPORTED',
        "the kernel routing mesh needs nftables (`nft`, Debian package nftables); or use mode 'userspace'",
        { cause: err },
      )
    if (/Operation not permitted|Permission denied|you must be root/i.test(detail))
      return new OverlayError(
        'PERMISSION_DENIED',
        `\`${what}\` was refused: the kernel routing mesh needs root (${detail.slice(0, 300)})`,
        { cause: err },
      )
    return new OverlayError('COMMAND_FAILED', `\`${what}\` failed: ${detail.slice(0, 500)}`, { cause: err })
  }
}
