import { OverlayError } from './errors.js'
import { execRunner } from './internal/exec.js'
import { formatIp, parseIp } from './internal/ip.js'
import { TABLE_NAME } from './internal/nft.js'
import type { NftRunner } from './kernel-mesh.js'

/** One service VIP as a sandbox's load balancer sees it. */
export interface VipEntry {
  /** The virtual IP (the service's address on a network the sandbox is on). */
  vip: string
  /** The healthy running tasks' addresses on that network, in round-robin order. Empty: refused. */
  backends: string[]
}

/** Which nftables table a service load balancer owns in each sandbox, and how it runs `nft`. */
export interface ServiceLoadBalancerOptions {
  /** The nftables table (family `inet`) owned in each sandbox. Default `swarmkit_lb`. */
  table?: string
  /** Command runner (default: execFile). */
  exec?: NftRunner
}

/** Programs service VIPs into task sandboxes, as Docker does with IPVS in each container's namespace. */
export interface ServiceLoadBalancer {
  /** Makes the sandbox's VIP table exactly `vips`, in one nftables transaction. */
  apply(namespace: string, vips: VipEntry[], options?: { signal?: AbortSignal }): Promise<void>
  /** Removes the table from the sandbox (no-op if absent). */
  remove(namespace: string, options?: { signal?: AbortSignal }): Promise<void>
}

/**
 * The `nft -f` script that makes `table` exactly these VIPs: new connections from the sandbox to a VIP are
 * translated to the next backend, round-robin (`numgen inc`), in the output hook, before routing; a VIP
 * with no backend is refused (TCP reset, ICMP unreachable), as IPVS with no real server is. Replacing the
 * table leaves conntrack alone, so connections already open keep their backend when the set changes.
 */
export function vipScript(table: string, vips: VipEntry[]): string {
  if (!TABLE_NAME.test(table)) throw new RangeError(`bad nftables table name ${table}`)
  if (!Array.isArray(vips)) throw new TypeError('vips must be an array')
  const lines = [`table inet ${table} {}`, `delete table inet ${table}`]
  if (vips.length === 0) return `${lines.join('\n')}\n`
  const nat: string[] = []
  const refuse: string[] = []
  const seen = new Set<string>()
  for (const [i, v] of vips.entries()) {
    const vip = parseIp(v?.vip, `vips[${i}].vip`)
    const kw = vip.family === 4 ? 'ip' : 'ip6'
    const addr = formatIp(vip.family, vip.value)
    if (seen.has(addr)) throw new RangeError(`vips[${i}].vip ${addr} is listed twice`)
    seen.add(addr)
    if (!Array.isArray(v.backends)) throw new TypeError(`vips[${i}].backends must be an array`)
    const backends = v.backends.map((b, j) => {
      const p = parseIp(b, `vips[${i}].backends[${j}]`)
      if (p.family !== vip.family)
        throw new RangeError(`vips[${i}].backends[${j}] is not an IPv${vip.family} address`)
      return formatIp(p.family, p.value)
    })
    if (backends.length === 0) {
      refuse.push(`    ${kw} daddr ${addr} meta l4proto tcp reject with tcp reset`)
      refuse.push(`    ${kw} daddr ${addr} reject`)
      continue
    }
    const target =
      backends.length === 1
        ? backends[0]
        : `numgen inc mod ${backends.length} map { ${backends.map((b, j) => `${j} : ${b}`).join(', ')} }`
    nat.push(`    ${kw} daddr ${addr} dnat ${kw} to ${target}`)
  }
  lines.push(
    `table inet ${table} {`,
    '  chain vips {',
    '    type nat hook output priority -100; policy accept;',
    ...nat,
    '  }',
    '  chain refused {',
    '    type filter hook output priority 0; policy accept;',
    ...refuse,
    '  }',
    '}',
  )
  return `${lines.join('\n')}\n`
}

const defaultRunner: NftRunner = execRunner(1 << 20)

class NftServiceLoadBalancer implements ServiceLoadBalancer {
  private readonly table: string
  private readonly run: NftRunner

  constructor(o: ServiceLoadBalancerOptions) {
    this.table = o.table ?? 'swarmkit_lb'
    if (!TABLE_NAME.test(this.table))
      throw new TypeError(
        'options.table must be a lowercase letter then up to 63 lowercase letters, digits or _',
      )
    if (o.exec !== undefined && typeof o.exec !== 'function')
      throw new TypeError('options.exec must be a function')
    this.run = o.exec ?? defaultRunner
  }

  apply(namespace: string, vips: VipEntry[], options?: { signal?: AbortSignal }): Promise<void> {
    return this.nft(namespace, vipScript(this.table, vips), options)
  }

  remove(namespace: string, options?: { signal?: AbortSignal }): Promise<void> {
    return this.nft(namespace, vipScript(this.table, []), options)
  }

  private async nft(namespace: string, script: string, options?: { signal?: AbortSignal }): Promise<void> {
    if (typeof namespace !== 'string' || !/^[\w.-]{1,64}$/.test(namespace))
      throw new TypeError('namespace must be a network namespace name')
    options?.signal?.throwIfAborted()
    const run: { signal?: AbortSignal; input: string } = { input: script }
    if (options?.signal !== undefined) run.signal = options.signal
    try {
      await this.run('ip', ['netns', 'exec', namespace, 'nft', '-f', '-'], run)
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string }
      const detail = String(e.stderr ?? '').trim() || String(e.message)
      throw new OverlayError(
        /Operation not permitted|Permission denied/i.test(detail) ? 'PERMISSION_DENIED' : 'COMMAND_FAILED',
        `programming the VIPs of namespace ${namespace} failed: ${detail.slice(0, 400)}`,
        { cause: err },
      )
    }
  }
}

/**
 * Service VIPs in the kernel with nftables, one table per task sandbox. Why nftables and not IPVS: this
 * package already drives nftables for the routing mesh, `numgen inc` gives IPVS's round-robin, conntrack
 * keeps existing flows on their backend across updates as IPVS does, a whole table is replaced in one
 * transaction, and kernels built without IP_VS (the project's own CI machines) still balance.
 */
export function serviceLoadBalancer(options: ServiceLoadBalancerOptions = {}): ServiceLoadBalancer {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  return new NftServiceLoadBalancer(options)
}
