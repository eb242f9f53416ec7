// Network namespaces for the chaos suite: each manager in its own namespace, joined by veth pairs to a bridge
// that lives in a hub namespace of its own. Nothing is added to the machine's namespace, every name is unique
// to the run, packets stay inside the namespaces, and `destroy()` (also run at process exit) removes it all.
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

function ip(args: string[], input?: string): string {
  return execFileSync('ip', args, {
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(input ? { input } : {}),
  })
}

/** Why namespaces cannot be used here, or undefined when they can (root, iproute2, nftables). */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)'
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' })
    execFileSync('nft', ['--version'], { stdio: 'ignore' })
  } catch {
    return 'needs iproute2 and nftables'
  }
  return undefined
}

export interface Netns {
  /** The namespace of member `i` (0-based) and its address on the bridge. */
  namespace(i: number): string
  address(i: number): string
  /** Drops every packet between member `i` and the members in `from` (both directions, in `i`'s namespace). */
  cut(i: number, from: readonly number[]): void
  /** Removes every rule `cut` added to member `i`. */
  heal(i: number): void
  destroy(): void
}

const live = new Set<Netns>()
process.on('exit', () => {
  for (const n of live) n.destroy()
})

/** Makes `members` namespaces on a fresh bridge (private addresses, only inside these namespaces). */
export function createNetns(members: number): Netns {
  const id = randomBytes(3).toString('hex')
  const subnet = `10.${200 + (randomBytes(1)[0]! % 50)}.${randomBytes(1)[0]!}`
  const hub = `sk${id}-hub`
  const names = Array.from({ length: members }, (_, i) => `sk${id}-m${i + 1}`)
  const made: string[] = []
  let destroyed = false
  const net: Netns = {
    namespace: (i) => names[i]!,
    address: (i) => `${subnet}.${i + 1}`,
    cut(i, from) {
      const peers = from.map((j) => `${subnet}.${j + 1}`).join(', ')
      const rules = [
        'table inet skchaos {',
        `  chain in { type filter hook input priority 0; policy accept; ip saddr { ${peers} } drop; }`,
        `  chain out { type filter hook output priority 0; policy accept; ip daddr { ${peers} } drop; }`,
        '}',
      ].join('\n')
      net.heal(i)
      ip(['netns', 'exec', names[i]!, 'nft', '-f', '-'], rules)
    },
    heal(i) {
      try {
        ip(['netns', 'exec', names[i]!, 'nft', 'delete', 'table', 'inet', 'skchaos'])
      } catch {
        // no rules there
      }
    },
    destroy() {
      if (destroyed) return
      destroyed = true
      live.delete(net)
      for (const ns of made.reverse()) {
        try {
          ip(['netns', 'del', ns])
        } catch {
          // already gone
        }
      }
    },
  }
  live.add(net)
  try {
    ip(['netns', 'add', hub])
    made.push(hub)
    ip(['-n', hub, 'link', 'add', 'br0', 'type', 'bridge'])
    ip(['-n', hub, 'link', 'set', 'br0', 'up'])
    names.forEach((ns, i) => {
      ip(['netns', 'add', ns])
      made.push(ns)
      ip(['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', `p${i + 1}`, 'netns', hub])
      ip(['-n', hub, 'link', 'set', `p${i + 1}`, 'master', 'br0', 'up'])
      ip(['-n', ns, 'link', 'set', 'lo', 'up'])
      ip(['-n', ns, 'addr', 'add', `${subnet}.${i + 1}/24`, 'dev', 'eth0'])
      ip(['-n', ns, 'link', 'set', 'eth0', 'up'])
    })
  } catch (err) {
    net.destroy()
    throw err
  }
  return net
}
