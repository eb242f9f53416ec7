import type { CallOptions, NetworkDriver, OverlayNetwork, Sandbox } from './driver.js'
import { OverlayError } from './errors.js'
import { execRunner } from './internal/exec.js'
import { parseIp } from './internal/ip.js'
import { checkService } from './internal/mesh-spec.js'
import { KernelMesh, type NftRunner } from './kernel-mesh.js'
import type { MeshService } from './mesh.js'

/** How a node's {@link ingressMesh} is built: its driver, the `ingress` network, its address there and its namespace. */
export interface IngressMeshOptions {
  /** This node's driver (the ingress network and the ingress sandbox are made with it). */
  driver: NetworkDriver
  /** The swarm's `ingress` overlay network. */
  network: OverlayNetwork
  /** This node's address on the ingress network (the ingress sandbox's; allocated by IPAM per node). */
  address: string
  /** This node's ID (host-mode ports bind only where a task of theirs runs). */
  node: string
  /** The network namespace of this node (as `ip -n`), e.g. a test's host. Default: the current one. */
  namespace?: string
  /**
   * Name prefix of the link between the node and its ingress sandbox and of the nftables tables:
   * a lowercase letter then up to 4 lowercase letters or digits. Default `sk`.
   */
  prefix?: string
  /** The point-to-point link node <-> ingress sandbox, as `a.b.c.d/30` (node .1, sandbox .2). Default 172.31.255.0/30. */
  link?: string
  /** The address published ports answer on in the node's namespace. Default `0.0.0.0` (every local one). */
  host?: string
  /** Command runner for `ip` and `nft` (default: execFile). */
  exec?: NftRunner
}

/**
 * The ingress routing mesh in the kernel, as Docker builds it: an ingress sandbox (a namespace on the
 * `ingress` overlay network with this node's ingress address) linked to the node's namespace. A published
 * port on the node is translated to the sandbox (nftables DNAT), and the sandbox balances new connections
 * round-robin over the service's tasks on every node (DNAT over VXLAN, masquerading to its ingress address
 * so replies come back through it). Host-mode ports are translated straight to the local task's address
 * without masquerade, so the task sees the client's address. No byte is copied in userspace.
 */
export interface IngressMesh {
  /** The ingress sandbox (its namespace answers `ip netns exec`). */
  readonly sandbox: Sandbox | undefined
  /** Makes the ingress network, the ingress sandbox and the link (idempotent). */
  start(options?: CallOptions): Promise<void>
  /**
   * Publishes (or updates) a port. Endpoints are the tasks' addresses on the ingress network (ingress mode)
   * or on the network the node routes to (host mode).
   */
  publish(service: MeshService, options?: CallOptions): Promise<void>
  unpublish(protocol: 'tcp' | 'udp', port: number, options?: CallOptions): Promise<void>
  /** Removes the tables, the link and the ingress sandbox (the ingress network stays with the driver). */
  close(options?: CallOptions): Promise<void>
}

/** The ingress sandbox's ID in the driver (include it in `reconcile` so it is kept). */
export const INGRESS_SANDBOX = 'ingress-sbox'

const defaultRunner: NftRunner = execRunner(1 << 20)

class Ingress implements IngressMesh {
  sandbox: Sandbox | undefined
  private readonly o: IngressMeshOptions
  private readonly prefix: string
  private readonly run: NftRunner
  private readonly linkNode: string
  private readonly linkSandbox: string
  private readonly entry: KernelMesh
  private readonly hostPorts: KernelMesh
  private balancer: KernelMesh | undefined
  private readonly ingressPorts = new Map<string, MeshService>()

  constructor(o: IngressMeshOptions) {
    if (typeof o !== 'object' || o === null) throw new TypeError('options must be an object')
    if (typeof o.driver?.createSandbox !== 'function')
      throw new TypeError('options.driver must be a NetworkDriver')
    parseIp(o.address, 'options.address')
    if (typeof o.node !== 'string' || o.node.length === 0)
      throw new TypeError('options.node must be a non-empty string')
    this.prefix = o.prefix ?? 'sk'
    if (!/^[a-z][a-z0-9]{0,4}$/.test(this.prefix))
      throw new TypeError(
        'options.prefix must be a lowercase letter then up to 4 lowercase letters or digits',
      )
    const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/30$/.exec(o.link ?? '172.31.255.0/30')
    if (m === null) throw new TypeError('options.link must be an IPv4 /30')
    const base = parseIp(`${m[1]}.${m[2]}.${m[3]}.${m[4]}`, 'options.link').value
    if ((base & 3n) !== 0n) throw new RangeError('options.link must be a /30 network address')
    const dotted = (v: bigint) => [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.')
    this.linkNode = dotted(base + 1n)
    this.linkSandbox = dotted(base + 2n)
    this.o = o
    this.run = o.exec ?? defaultRunner
    const host = o.host ?? '0.0.0.0'
    const ns = o.namespace === undefined ? {} : { namespace: o.namespace }
    const exec = o.exec === undefined ? {} : { exec: o.exec }
    // Published ports -> the ingress sandbox (masqueraded: the sandbox replies over the link).
    this.entry = new KernelMesh({ host, kernel: { table: `${this.prefix}_ingress_entry`, ...ns, ...exec } })
    // Host-mode ports -> the local task, the client's source kept.
    this.hostPorts = new KernelMesh({
      host,
      node: o.node,
      kernel: { table: `${this.prefix}_host_ports`, masquerade: false, ...ns, ...exec },
    })
  }

  async start(options?: CallOptions): Promise<void> {
    const d = this.o.driver
    await d.createNetwork(this.o.network, options)
    this.sandbox = await d.createSandbox(
      { id: INGRESS_SANDBOX, endpoints: [{ network: this.o.network.id, address: this.o.address }] },
      options,
    )
    const sbox = this.sandbox.namespace
    const link = `${this.prefix}ingr`
    const at = this.o.namespace === undefined ? [] : ['-n', this.o.namespace]
    const exists = await this.run('ip', [...at, 'link', 'show', 'dev', link]).then(
      () => true,
      () => false,
    )
    if (!exists) {
      await this.ip([
        ...at,
        'link',
        'add',
        'name',
        link,
        'type',
        'veth',
        'peer',
        'name',
        'gw0',
        'netns',
        sbox,
      ])
      await this.ip([...at, 'addr', 'add', `${this.linkNode}/30`, 'dev', link])
      await this.ip([...at, 'link', 'set', 'dev', link, 'up'])
      await this.ip(['-n', sbox, 'addr', 'add', `${this.linkSandbox}/30`, 'dev', 'gw0'])
      await this.ip(['-n', sbox, 'link', 'set', 'dev', 'gw0', 'up'])
    }
    this.balancer = new KernelMesh({
      host: '0.0.0.0',
      kernel: {
        table: `${this.prefix}_ingress`,
        namespace: sbox,
        ...(this.o.exec === undefined ? {} : { exec: this.o.exec }),
      },
    })
  }

  async publish(service: MeshService, options?: CallOptions): Promise<void> {
    const spec = checkService(service)
    const balancer = this.started()
    if (spec.publishMode === 'host') {
      await this.hostPorts.publish(spec, options)
      return
    }
    await balancer.publish(
      { ...spec, endpoints: spec.endpoints.map((e) => ({ ...e, node: undefined })) },
      options,
    )
    await this.entry.publish(
      {
        service: spec.service,
        protocol: spec.protocol,
        publishedPort: spec.publishedPort,
        endpoints: [{ address: this.linkSandbox, port: spec.publishedPort }],
      },
      options,
    )
    this.ingressPorts.set(`${spec.protocol}/${spec.publishedPort}`, spec)
  }

  async unpublish(protocol: 'tcp' | 'udp', port: number, options?: CallOptions): Promise<void> {
    const balancer = this.started()
    if (this.ingressPorts.delete(`${protocol}/${port}`)) {
      await this.entry.unpublish(protocol, port, options)
      await balancer.unpublish(protocol, port, options)
    } else await this.hostPorts.unpublish(protocol, port, options)
  }

  async close(options?: CallOptions): Promise<void> {
    await this.entry.close(options)
    await this.hostPorts.close(options)
    await this.balancer?.close(options)
    const at = this.o.namespace === undefined ? [] : ['-n', this.o.namespace]
    await this.run('ip', [...at, 'link', 'del', 'dev', `${this.prefix}ingr`]).catch(() => {})
    await this.o.driver.removeSandbox(INGRESS_SANDBOX, options)
    this.sandbox = undefined
    this.balancer = undefined
  }

  private started(): KernelMesh {
    if (this.balancer === undefined) throw new OverlayError('CLOSED', 'the ingress mesh is not started')
    return this.balancer
  }

  private async ip(args: string[]): Promise<void> {
    await this.run('ip', args).catch((err) => {
      const e = err as { stderr?: string; message?: string }
      throw new OverlayError(
        'COMMAND_FAILED',
        `\`ip ${args.join(' ')}\` failed: ${String(e.stderr ?? e.message)
          .trim()
          .slice(0, 300)}`,
        {
          cause: err,
        },
      )
    })
  }
}

/** The kernel ingress routing mesh of one node; see {@link IngressMesh}. Root and Linux only. */
export function ingressMesh(options: IngressMeshOptions): IngressMesh {
  return new Ingress(options)
}
