/**
 * @packageDocumentation
 * The compliance suite every `NetworkDriver` runs (the memory driver always, the Linux driver wherever the
 * kernel can be used; yours too). Call it inside a `describe`:
 *
 * ```ts
 * import { memoryDriver } from '@swarmkit/overlay'
 * import { driverCompliance } from '@swarmkit/overlay/testing'
 * describe('memoryDriver', () => driverCompliance(() => ({ driver: memoryDriver({ vtep: '198.18.0.1' }), vtep: '198.18.0.1' })))
 * ```
 *
 * Each case ends with `destroy()`. It needs vitest (an optional peer dependency).
 */
import { expect, it } from 'vitest'
import type { NetworkDriver, OverlayNetwork } from '../driver.js'
import { isOverlayError } from '../errors.js'
import { macFor } from '../mac.js'

/** What a compliance run needs: a driver, fresh or destroyed, and its node's VTEP address. */
export interface DriverFixture {
  driver: NetworkDriver
  /** The node's own VTEP address. */
  vtep: string
}

const netA: OverlayNetwork = {
  id: 'net-a',
  vni: 4100,
  subnet: '10.20.1.0/24',
  gateway: '10.20.1.1',
  nodeAddress: '10.20.1.250',
}
const netB: OverlayNetwork = { id: 'net-b', vni: 4101, subnet: '10.20.2.0/24', gateway: '10.20.2.1' }

/** Registers the driver compliance cases (vitest `it`s) for the driver `fixture` returns. */
export function driverCompliance(fixture: () => DriverFixture): void {
  it('creates a network idempotently and reads it back', async () => {
    const { driver } = fixture()
    await driver.createNetwork(netA)
    await driver.createNetwork(netA)
    const s = await driver.inspect()
    expect(s.networks).toEqual([{ id: 'net-a', vni: 4100 }])
    expect(s.resources.length).toBeGreaterThan(0)
    await expect(driver.createNetwork({ ...netB, vni: 4100 })).rejects.toMatchObject({ code: 'IN_USE' })
    // The same network moved to another VNI: only the new one remains.
    await driver.createNetwork({ ...netA, vni: 4105 })
    const moved = await driver.inspect()
    expect(moved.networks).toEqual([{ id: 'net-a', vni: 4105 }])
    expect(moved.resources.length).toBe(s.resources.length)
    await driver.destroy()
  })

  it('programs exactly the given remote peers, skipping its own', async () => {
    const { driver, vtep } = fixture()
    await driver.createNetwork(netA)
    await driver.setPeers('net-a', [
      { address: '10.20.1.5', vtep: '198.18.0.2' },
      { address: '10.20.1.6', vtep: '198.18.0.3' },
      { address: '10.20.1.7', vtep }, // local: no entry
    ])
    await driver.setPeers('net-a', [
      { address: '10.20.1.6', vtep: '198.18.0.3' },
      { address: '10.20.1.8', vtep: '198.18.0.2', mac: '02:aa:00:00:00:08' },
    ])
    const s = await driver.inspect()
    expect(s.peers).toEqual([
      { network: 'net-a', address: '10.20.1.6', mac: macFor('10.20.1.6'), vtep: '198.18.0.3' },
      { network: 'net-a', address: '10.20.1.8', mac: '02:aa:00:00:00:08', vtep: '198.18.0.2' },
    ])
    await driver.setPeers('net-a', [])
    expect((await driver.inspect()).peers).toEqual([])
    await expect(driver.setPeers('nope', [])).rejects.toMatchObject({ code: 'NOT_FOUND' })
    await driver.destroy()
  })

  it('adds and removes single peers without touching the others (updatePeers)', async () => {
    const { driver, vtep } = fixture()
    await driver.createNetwork(netA)
    await driver.setPeers('net-a', [
      { address: '10.20.1.5', vtep: '198.18.0.2' },
      { address: '10.20.1.6', vtep: '198.18.0.3' },
    ])
    await driver.updatePeers('net-a', {
      add: [
        { address: '10.20.1.8', vtep: '198.18.0.2' },
        { address: '10.20.1.6', vtep: '198.18.0.4' }, // moved to another node
        { address: '10.20.1.9', vtep }, // local: no entry
      ],
      remove: ['10.20.1.5', '10.20.1.77'],
    })
    const s = await driver.inspect()
    expect(s.peers.map((p) => `${p.address} ${p.vtep}`)).toEqual([
      '10.20.1.6 198.18.0.4',
      '10.20.1.8 198.18.0.2',
    ])
    await expect(driver.updatePeers('nope', {})).rejects.toMatchObject({ code: 'NOT_FOUND' })
    await driver.destroy()
  })

  it('programs hundreds of peers at once and replaces them wholesale', async () => {
    const { driver } = fixture()
    await driver.createNetwork({ ...netB, subnet: '10.21.0.0/22', gateway: '10.21.0.1' })
    const many = (offset: number) =>
      Array.from({ length: 300 }, (_, i) => ({
        address: `10.21.${(i + offset) >> 8}.${(i + offset) & 255 || 1}`,
        vtep: `198.18.1.${1 + (i % 50)}`,
      })).filter((p, i, all) => all.findIndex((q) => q.address === p.address) === i)
    await driver.setPeers('net-b', many(0))
    expect((await driver.inspect()).peers.length).toBe(many(0).length)
    await driver.setPeers('net-b', many(150))
    const after = (await driver.inspect()).peers.map((p) => p.address).sort()
    expect(after).toEqual(
      many(150)
        .map((p) => p.address)
        .sort(),
    )
    await driver.destroy()
  })

  it('creates sandboxes on known networks, idempotently, and removes them', async () => {
    const { driver } = fixture()
    await expect(
      driver.createSandbox({ id: 't1', endpoints: [{ network: 'net-a', address: '10.20.1.2' }] }),
    ).rejects.toSatisfy((e: unknown) => isOverlayError(e, 'NOT_FOUND'))
    await driver.createNetwork(netA)
    await driver.createNetwork(netB)
    const spec = {
      id: 't1',
      endpoints: [
        { network: 'net-a', address: '10.20.1.2' },
        { network: 'net-b', address: '10.20.2.2' },
      ],
    }
    const sb = await driver.createSandbox(spec)
    expect(sb.interfaces.map((i) => [i.name, i.address, i.mac])).toEqual([
      ['eth0', '10.20.1.2', macFor('10.20.1.2')],
      ['eth1', '10.20.2.2', macFor('10.20.2.2')],
    ])
    await driver.createSandbox(spec)
    await driver.createSandbox({ id: 't1', endpoints: [{ network: 'net-a', address: '10.20.1.3' }] })
    await expect(
      driver.createSandbox({ id: 't2', endpoints: [{ network: 'net-a', address: '10.20.9.3' }] }),
    ).rejects.toMatchObject({ code: 'OUT_OF_RANGE' })
    expect((await driver.inspect()).sandboxes).toEqual(['t1'])
    await driver.removeSandbox('t1')
    await driver.removeSandbox('t1')
    expect((await driver.inspect()).sandboxes).toEqual([])
    await driver.destroy()
  })

  it('reconciles to exactly the desired state and destroys everything it owns', async () => {
    const { driver } = fixture()
    await driver.createNetwork(netA)
    await driver.createNetwork(netB)
    await driver.createSandbox({ id: 'stale', endpoints: [{ network: 'net-b', address: '10.20.2.9' }] })
    await driver.reconcile({
      networks: [netA],
      peers: { 'net-a': [{ address: '10.20.1.5', vtep: '198.18.0.2' }] },
      sandboxes: [{ id: 'keep', endpoints: [{ network: 'net-a', address: '10.20.1.4' }] }],
    })
    const s = await driver.inspect()
    expect(s.networks).toEqual([{ id: 'net-a', vni: 4100 }])
    expect(s.sandboxes).toEqual(['keep'])
    expect(s.peers.map((p) => p.address)).toEqual(['10.20.1.5'])
    await driver.destroy()
    const after = await driver.inspect()
    expect(after).toEqual({ networks: [], peers: [], sandboxes: [], resources: [] })
  })

  it('checks its input', async () => {
    const { driver } = fixture()
    await expect(async () => driver.createNetwork({ ...netA, vni: 0 })).rejects.toThrow(/network.vni/)
    await expect(async () => driver.createNetwork({ ...netA, gateway: '10.9.9.9' })).rejects.toThrow(
      /network.gateway/,
    )
    await expect(async () => driver.createSandbox({ id: 'bad id', endpoints: [] })).rejects.toThrow(TypeError)
    await expect(async () => driver.setPeers('net-a', [{ address: 'x', vtep: '1.2.3.4' }])).rejects.toThrow(
      /peers\[0\].address/,
    )
  })
}
