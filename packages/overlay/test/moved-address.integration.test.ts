// An address freed on one host and given to a task on another (the cluster's IPAM does this all the time):
// the MAC follows the address, so the bridge on the new host may have learnt that MAC on its VXLAN port
// while the address was remote. createSandbox must drop that entry, or frames for the new local task go
// into the tunnel until it ages out (5 min). The new task's namespace has IPv6 off, as a container's has,
// so it sends nothing by itself that would teach the bridge its port.
import { type ChildProcess, spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { linuxDriver, type NetworkDriver } from '../src/index.js'
import { kernelUnavailable, Lab, sh } from './helpers/lab.js'

const unavailable = await kernelUnavailable()

const VNI = 4301
const network = { id: 'n', vni: VNI, subnet: '10.78.0.0/24', gateway: '10.78.0.1' }
const B = '10.78.0.10' // stays on host 0
const X = '10.78.0.20' // first on host 1, then on host 0
const macX = '02:42:0a:4e:00:14'

describe.skipIf(unavailable !== undefined && process.env.SWARMKIT_CI !== '1')(
  'linuxDriver: an address that moves from a remote host to this one',
  { timeout: 60_000 },
  () => {
    const lab = new Lab()
    const drivers: NetworkDriver[] = []
    let proc: ChildProcess | undefined

    // Entries of host 0's bridge for a MAC, as `port flags` (learnt ones have no `self`).
    const bridgeEntries = async (mac: string): Promise<string[]> => {
      const h = lab.hosts[0]!
      const r = await sh('bridge', ['-n', h.ns, '-j', 'fdb', 'show', 'br', `${h.prefix}b${VNI.toString(36)}`])
      const all = JSON.parse(r.out || '[]') as Array<{ mac: string; ifname: string; flags?: string[] }>
      return all.filter((e) => e.mac === mac).map((e) => `${e.ifname} ${(e.flags ?? []).join(',')}`.trim())
    }
    const ping = (ns: string, to: string) => sh('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '2', to])

    beforeAll(async () => {
      if (unavailable !== undefined) throw new Error(`kernel tests could not run in CI: ${unavailable}`)
      await lab.create(2)
      for (const h of lab.hosts) {
        const d = linuxDriver({ vtep: h.vtep, namespace: h.ns, prefix: h.prefix })
        drivers.push(d)
        await d.createNetwork(network)
      }
    }, 120_000)

    afterAll(async () => {
      proc?.kill('SIGKILL')
      const leftovers: string[] = []
      for (const d of drivers) {
        await d.destroy().catch((e) => leftovers.push(`destroy failed: ${e}`))
        leftovers.push(...(await d.inspect()).resources)
      }
      const rest = await lab.destroy()
      expect(leftovers).toEqual([])
      expect(rest).toEqual([])
    }, 120_000)

    it('reaches the new local task at once (the learnt tunnel entry for its MAC is dropped)', async () => {
      const [h0, h1] = [lab.hosts[0]!, lab.hosts[1]!]
      const [d0, d1] = [drivers[0]!, drivers[1]!]
      await d0.setPeers('n', [{ address: X, vtep: h1.vtep }])
      await d1.setPeers('n', [{ address: B, vtep: h0.vtep }])
      const b = await d0.createSandbox({ id: 'b', endpoints: [{ network: 'n', address: B }] })
      await d1.createSandbox({ id: 'x1', endpoints: [{ network: 'n', address: X }] })

      // B talks to X on host 1: the reply comes out of the tunnel and host 0's bridge learns X's MAC there.
      const first = await ping(b.namespace, X)
      expect(first.code, first.out + first.err).toBe(0)
      const vx = `${h0.prefix}x${VNI.toString(36)}`
      expect(await bridgeEntries(macX)).toContain(vx)

      // X is freed on host 1 and given to a task on host 0 (a namespace with IPv6 off, like a container's).
      await d1.removeSandbox('x1')
      await d0.updatePeers('n', { remove: [X] })
      proc = spawn(
        'unshare',
        [
          '--net',
          'sh',
          '-c',
          'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6 && echo ready && exec sleep 300',
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      )
      await new Promise<void>((resolve, reject) => {
        proc!.stdout!.on('data', (d) => String(d).includes('ready') && resolve())
        proc!.once('exit', (code) => reject(new Error(`unshare exited (${code})`)))
      })
      await d0.createSandbox({ id: 'x0', endpoints: [{ network: 'n', address: X }], pid: proc.pid! })

      // No entry left that sends X's MAC into the tunnel, and B reaches X here with its cached ARP entry.
      expect(await bridgeEntries(macX)).not.toContain(vx)
      const second = await ping(b.namespace, X)
      expect(second.code, second.out + second.err).toBe(0)
    })
  },
)
