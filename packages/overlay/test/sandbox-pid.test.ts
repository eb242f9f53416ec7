// A sandbox that joins a running process's network namespace (SandboxSpec.pid), as a CNI plugin gives
// a container started with no network its interface: removing the sandbox drops only the name and the
// veth pair, the process keeps its namespace.
import { type ChildProcess, spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { linuxDriver, type NetworkDriver } from '../src/index.js'
import { kernelUnavailable, Lab, sh } from './helpers/lab.js'

const unavailable = await kernelUnavailable()

describe.skipIf(unavailable !== undefined && process.env.SWARMKIT_CI !== '1')(
  'linuxDriver sandboxes in an existing namespace',
  { timeout: 60_000 },
  () => {
    const lab = new Lab()
    let driver: NetworkDriver
    let proc: ChildProcess
    beforeAll(async () => {
      if (unavailable !== undefined) throw new Error(`kernel tests could not run in CI: ${unavailable}`)
      await lab.create(1)
      const h = lab.hosts[0]!
      driver = linuxDriver({ vtep: h.vtep, namespace: h.ns, prefix: h.prefix })
      // A process in a network namespace of its own (only loopback), like a container with no network.
      proc = spawn('unshare', ['--net', 'sleep', '300'], { stdio: 'ignore' })
      await new Promise((r) => setTimeout(r, 0))
      for (let i = 0; i < 100; i++) {
        const mine = (await sh('readlink', [`/proc/${proc.pid}/ns/net`])).out
        const ours = (await sh('readlink', [`/proc/${process.pid}/ns/net`])).out
        if (mine && mine !== ours) break
        await new Promise((r) => setTimeout(r, 20))
      }
    }, 120_000)
    afterAll(async () => {
      proc?.kill('SIGKILL')
      await driver?.destroy()
      expect((await driver.inspect()).resources).toEqual([])
      expect(await lab.destroy()).toEqual([])
    }, 120_000)

    it('joins the process namespace to the network and leaves it when removed', async () => {
      await driver.createNetwork({ id: 'n1', vni: 4242, subnet: '10.77.0.0/24', gateway: '10.77.0.1' })
      const sandbox = await driver.createSandbox({
        id: 'task1',
        endpoints: [{ network: 'n1', address: '10.77.0.5' }],
        pid: proc.pid!,
      })
      const inside = await sh('nsenter', [
        '-t',
        String(proc.pid),
        '-n',
        'ip',
        '-4',
        '-o',
        'addr',
        'show',
        'dev',
        'eth0',
      ])
      expect(inside.out).toContain('10.77.0.5/24')
      expect(
        (await sh('nsenter', ['-t', String(proc.pid), '-n', 'ip', 'route', 'show', 'default'])).out,
      ).toContain('via 10.77.0.1')
      expect((await driver.inspect()).sandboxes).toEqual([sandbox.id])
      await driver.removeSandbox('task1')
      expect((await driver.inspect()).sandboxes).toEqual([])
      // The process is still there, with its own namespace, now without the interface.
      expect(proc.exitCode).toBe(null)
      const after = (await sh('nsenter', ['-t', String(proc.pid), '-n', 'ip', '-o', 'link', 'show'])).out
      expect(after).not.toContain('eth0')
    })

    it('refuses a pid that is not a process ID', async () => {
      await expect(
        Promise.resolve().then(() =>
          driver.createSandbox({ id: 'bad', endpoints: [{ network: 'n1', address: '10.77.0.6' }], pid: -1 }),
        ),
      ).rejects.toThrow('spec.pid must be a process ID')
    })
  },
)
