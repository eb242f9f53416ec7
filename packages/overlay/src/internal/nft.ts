// The kernel routing mesh as one nftables table: a pure function from the published ports to the `nft -f`
// script that replaces the table atomically. Addresses reach here already parsed and re-formatted by
// `formatIp`, ports are checked integers and the table name is checked, so nothing a caller passes can
// inject into the script.
import { type Family, formatIp, parseIp } from './ip.js'

export interface NftPort {
  protocol: 'tcp' | 'udp'
  port: number
  /** The balanced endpoints, in round-robin order; empty: the port is not translated at all. */
  endpoints: Array<{ address: string; port: number }>
}

export interface NftTable {
  /** The table's name (checked by the caller: `[a-z][a-z0-9_]{0,63}`). */
  name: string
  family: Family
  /** The address published ports answer on; undefined: every local address of the namespace. */
  host: string | undefined
  /** Masquerade translated flows leaving through a real interface (default true). */
  masquerade?: boolean
  ports: NftPort[]
}

/** The table name pattern: a lowercase letter, then up to 63 lowercase letters, digits or `_`. */
export const TABLE_NAME = /^[a-z][a-z0-9_]{0,63}$/

/**
 * The script that makes the table exactly this (or removes it when nothing is published). `table … {}`
 * then `delete table` makes the delete succeed whether or not the table exists, and the whole file is one
 * nftables transaction: the kernel sees the old table or the new one, never a mix.
 */
export function nftScript(t: NftTable): string {
  if (!TABLE_NAME.test(t.name)) throw new RangeError(`bad nftables table name ${t.name}`)
  const lines = [`table inet ${t.name} {}`, `delete table inet ${t.name}`]
  const live = t.ports.filter((p) => p.endpoints.length > 0)
  if (live.length === 0) return `${lines.join('\n')}\n`
  const ipKw = t.family === 4 ? 'ip' : 'ip6'
  const host = t.host === undefined ? undefined : canonical(t.host)
  const toLocal = host === undefined ? 'fib daddr type local' : `${ipKw} daddr ${host}`
  const rules: string[] = []
  const masq: string[] = []
  for (const p of [...live].sort((a, b) => a.port - b.port || (a.protocol < b.protocol ? -1 : 1))) {
    checkPort(p.port)
    const eps = p.endpoints.map((e) => {
      checkPort(e.port)
      const parsed = parseIp(e.address, 'endpoint address')
      if (parsed.family !== t.family)
        throw new RangeError(`endpoint ${e.address} is not an IPv${t.family} address`)
      return { address: formatIp(parsed.family, parsed.value), port: e.port }
    })
    let target: string
    if (eps.length === 1) {
      const e = eps[0]!
      target = t.family === 4 ? `${e.address}:${e.port}` : `[${e.address}]:${e.port}`
    } else {
      // numgen inc: a counter per rule, so new connections (NAT rules see only a flow's first packet)
      // go round-robin over the endpoints.
      const map = eps.map((e, i) => `${i} : ${e.address} . ${e.port}`).join(', ')
      target = `numgen inc mod ${eps.length} map { ${map} }`
    }
    rules.push(`    ${p.protocol} dport ${p.port} dnat ${ipKw} to ${target}`)
    // Translated flows that leave through a real interface get this node's address as their source, so
    // the endpoint's replies come back here to be translated back (what swarm's ingress sandbox does).
    const orig = host === undefined ? '' : ` ct original ${ipKw} daddr ${host}`
    if (t.masquerade !== false)
      masq.push(
        `    ct status dnat meta l4proto ${p.protocol}${orig} ct original proto-dst ${p.port} oifname != "lo" masquerade`,
      )
  }
  lines.push(
    `table inet ${t.name} {`,
    '  chain services {',
    ...rules,
    '  }',
    '  chain prerouting {',
    '    type nat hook prerouting priority -100; policy accept;',
    `    ${toLocal} jump services`,
    '  }',
    '  chain output {',
    '    type nat hook output priority -100; policy accept;',
    `    ${toLocal} jump services`,
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority 100; policy accept;',
    ...masq,
    '  }',
    '}',
  )
  return `${lines.join('\n')}\n`
}

function canonical(address: string): string {
  const p = parseIp(address, 'host')
  return formatIp(p.family, p.value)
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`bad port ${port}`)
}
