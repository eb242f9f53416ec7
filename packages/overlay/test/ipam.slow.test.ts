// Seeded IPAM fuzz: random networks (pool and user-given, IPv4 and IPv6), addresses allocated, reserved
// and released, networks dropped, and the allocator checked against a model and rebuilt from its records
// along the way. A small budget by default; SWARMKIT_SLOW=1 runs many more seeds and operations. A failure
// prints its seed: rerun with SEED=<n>.
import { describe, expect, it } from 'vitest'
import { mulberry32 } from '../../../test/support/mulberry32.js'
import { ipam, isOverlayError, rebuildIpam } from '../src/index.js'
import { overlaps, parseCidr } from '../src/internal/ip.js'

const slow = process.env.SWARMKIT_SLOW === '1'
const seeds = process.env.SEED
  ? [Number(process.env.SEED)]
  : Array.from({ length: slow ? 20 : 3 }, (_, i) => 1000 + i)
const opsPerSeed = slow ? 1_000_000 : 100_000

const rng = mulberry32

describe('ipam fuzz', () => {
  for (const seed of seeds) {
    it(`seed ${seed}: matches a model, never overlaps, rebuilds equal (${opsPerSeed} ops)`, {
      timeout: slow ? 600_000 : 60_000,
    }, () => {
      const r = rng(seed)
      const options = {
        pools: [
          { base: '10.0.0.0/16', size: 22 },
          { base: 'fd00:aa::/56', size: 64 },
        ],
      }
      let a = ipam(options)
      const held = new Map<string, Set<string>>() // network -> addresses
      const list = new Map<string, string[]>()
      let next = 0
      try {
        for (let i = 0; i < opsPerSeed; i++) {
          const x = r()
          const nets = [...held.keys()]
          if (nets.length === 0 || x < 0.002) {
            const net = `n${next++}`
            try {
              if (r() < 0.3) {
                const third = Math.floor(r() * 8) * 4
                a.allocateSubnet(net, {
                  subnet: `10.0.${128 + third}.0/${22 + Math.floor(r() * 3)}`,
                })
              } else a.allocateSubnet(net, { family: r() < 0.7 ? 4 : 6 })
              held.set(net, new Set())
              list.set(net, [])
            } catch (err) {
              if (!isOverlayError(err, 'POOL_EXHAUSTED') && !isOverlayError(err, 'SUBNET_OVERLAP')) throw err
            }
          } else if (x < 0.003) {
            const net = nets[Math.floor(r() * nets.length)]!
            a.releaseNetwork(net)
            held.delete(net)
            list.delete(net)
          } else if (i % (opsPerSeed / 20) === 0) {
            // 20 rebuilds per seed: the new leader's allocator carries on from the records.
            a = rebuildIpam(a.state(), options)
          } else {
            const net = nets[Math.floor(r() * nets.length)]!
            const set = held.get(net)!
            const arr = list.get(net)!
            if (arr.length > 0 && r() < 0.45) {
              const j = Math.floor(r() * arr.length)
              const addr = arr[j]!
              arr[j] = arr[arr.length - 1]!
              arr.pop()
              set.delete(addr)
              a.releaseAddress(net, addr)
            } else {
              try {
                const addr = a.allocateAddress(net)
                if (set.has(addr)) throw new Error(`${addr} handed out twice on ${net} at op ${i}`)
                set.add(addr)
                arr.push(addr)
              } catch (err) {
                if (!isOverlayError(err, 'POOL_EXHAUSTED')) throw err
              }
            }
          }
        }
        const state = a.state()
        expect(state.addresses.length).toBe([...held.values()].reduce((n, s) => n + s.size, 0))
        for (const { network, address } of state.addresses) expect(held.get(network)?.has(address)).toBe(true)
        const cidrs = state.subnets.map((s) => parseCidr(s.subnet, 's'))
        for (let i = 0; i < cidrs.length; i++)
          for (let j = i + 1; j < cidrs.length; j++) expect(overlaps(cidrs[i]!, cidrs[j]!)).toBe(false)
        expect(rebuildIpam(state, options).state()).toEqual(state)
      } catch (err) {
        throw new Error(
          `ipam fuzz failed with seed ${seed} (rerun: SEED=${seed}): ${(err as Error).message}`,
          {
            cause: err,
          },
        )
      }
    })
  }
})
