import { macFor as derive, parseIp } from './internal/ip.js'

/**
 * The MAC swarmkit's drivers give an overlay address: locally administered, `02:42` + the IPv4 address
 * (`02:43` + the low 32 bits for IPv6). Peers need it to program forwarding entries.
 */
export function macFor(address: string): string {
  const { family, value } = parseIp(address, 'address')
  return derive(family, value)
}
