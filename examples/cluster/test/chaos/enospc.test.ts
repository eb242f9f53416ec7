// A full disk: a manager's state directory on a size-limited tmpfs that the test fills under load. Writes must
// fail with a clear error (no crash, no stack trace), nothing acknowledged may be lost, and the manager must
// take writes again once space returns, without a restart.
import { execFileSync } from 'node:child_process'
import { closeSync, openSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { check } from './checker.js'
import { Load } from './load.js'
import { ChaosCluster, until } from './managers.js'
import { seedOf } from './profile.js'

const missing = process.getuid?.() === 0 ? undefined : 'needs root (mount -t tmpfs)'
if (missing && process.env.SWARMKIT_CI === '1')
  throw new Error(`the full-disk case needs root in CI: ${missing}`)

const mounts: string[] = []
const unmount = () => {
  for (const dir of mounts.splice(0)) {
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' })
    } catch {
      // not mounted
    }
  }
}
process.on('exit', unmount)

let cluster: ChaosCluster | undefined
let load: Load | undefined
afterAll(async () => {
  await load?.stop()
  await cluster?.destroy()
  unmount()
})

/** Writes zeros to `file` until the file system is full; returns the bytes written. */
function fill(file: string): number {
  const fd = openSync(file, 'w')
  const chunk = Buffer.alloc(256 * 1024)
  let written = 0
  try {
    for (;;) written += writeSync(fd, chunk)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
  } finally {
    closeSync(fd)
  }
  return written
}

it.skipIf(missing !== undefined)(
  'fails writes clearly while the disk is full, loses nothing acknowledged, and recovers when space returns',
  async () => {
    const seed = seedOf('full disk')
    const c = new ChaosCluster()
    cluster = c
    const m = await c.add()
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m,mode=0700', 'tmpfs', m.stateDir])
    mounts.push(m.stateDir)
    c.cleanups.push(unmount)
    await m.start()
    const init = await m.request('POST', '/swarm/init', { ListenAddr: m.listenAddr }, 60_000)
    expect(init.status).toBe(200)
    load = new Load(c, { writers: 4, seed, configBytes: 256, updateShare: 0.2, timeoutMs: 15_000 })
    await load.start()
    await load.acknowledged(50)

    const filler = join(m.stateDir, 'filler')
    fill(filler)
    const full = Date.now()
    // Writes now fail, each with an answer that says why.
    const refused = await until(
      'a write refused for lack of space',
      () => load!.history.find((o) => o.start >= full && o.outcome === 'unknown' && o.end > 0),
      60_000,
      () => c.explain(),
    )
    console.log(`while full: ${refused.error}`)
    expect(refused.error).toMatch(/no space left on device|ENOSPC/i)
    expect(m.running).toBe(true)

    rmSync(filler)
    const freed = Date.now()
    await until(
      'a write acknowledged after space returned',
      () => load!.firstAckAfter(freed),
      60_000,
      () => c.explain(),
    )
    await load.stop()
    const report = await check(c, load)
    console.log(`full disk: ${JSON.stringify(report)}`)
    expect(m.log()).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/)
  },
  180_000,
)
