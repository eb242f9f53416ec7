// Issue #13, items 2 to 8: one case per fault, each on real manager processes, each failing without its fix.
import { execFile } from 'node:child_process'
import { cpSync, existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { FileLogStorage } from '@swarmkit/raft'
import { KeyManager } from '@swarmkit/store'
import { afterEach, describe, expect, it } from 'vitest'
import { ChaosCluster, CLI, type ManagerProcess, until } from './managers.js'

const STACK = /\n\s+at .+:\d+:\d+\)?/

let cluster: ChaosCluster | undefined
afterEach(async () => {
  await cluster?.destroy()
  cluster = undefined
})

const begin = async (managers: number, args: string[] = []) => {
  cluster = new ChaosCluster({ args })
  await cluster.form(managers)
  return cluster
}

/** Runs swarmkit-cluster to its exit (bounded); its exit code and output. */
function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({
        code: err ? ((err as { code?: number }).code ?? null) : 0,
        stdout: String(stdout),
        stderr: String(stderr),
      }),
    )
  })
}

async function nodes(m: ManagerProcess) {
  const r = await m.request('GET', '/nodes', undefined, 5000)
  if (r.status !== 200) throw new Error(`${m.name} GET /nodes: ${r.status} ${r.text}`)
  return r.json as {
    ID: string
    Version: { Index: number }
    Spec: Record<string, unknown>
    Description: { Hostname: string }
    Status: { State: string }
    ManagerStatus?: { Leader?: boolean; Reachability: string }
  }[]
}

describe('issue 13 faults on manager processes', () => {
  it('item 2: a manager down longer than the grace period is reachable again once back, and can be demoted', async () => {
    const c = await begin(3, ['--heartbeat-period', '500'])
    const leader = await c.waitLeader()
    const down = c.managers.find((m) => m !== leader)!
    await down.kill()
    await until(
      `${down.name} marked down`,
      async () =>
        (await nodes(leader)).find((n) => n.Description.Hostname === down.name)?.Status.State === 'down',
      60_000,
    )
    await down.start()
    const back = await until(
      `${down.name} ready and reachable`,
      async () => {
        const n = (await nodes(leader)).find((x) => x.Description.Hostname === down.name)
        return n?.Status.State === 'ready' && n.ManagerStatus?.Reachability === 'reachable' ? n : undefined
      },
      60_000,
      () => c.explain(),
    )
    const r = await leader.request('POST', `/nodes/${back.ID}/update?version=${back.Version.Index}`, {
      ...back.Spec,
      Role: 'worker',
    })
    expect(`${r.status} ${r.text}`).toMatch(/^200/)
  }, 180_000)

  it('item 3: an absurd replica count is refused with a 400 that names the limit, and the cluster stays up', async () => {
    const c = await begin(3)
    const leader = await c.waitLeader()
    const r = await leader.request('POST', '/services/create', {
      Name: 'absurd',
      TaskTemplate: { ContainerSpec: { Image: 'nginx' } },
      Mode: { Replicated: { Replicas: 999_999_999 } },
    })
    expect(r.status).toBe(400)
    expect(r.json?.message).toMatch(/replica/i)
    const ok = await leader.request('POST', '/configs/create', { Name: 'after', Data: 'YWZ0ZXI=' })
    expect(ok.status).toBe(201)
    for (const m of c.managers) expect(m.running).toBe(true)
  }, 180_000)

  it('item 4: a second process on a live state directory exits 1 with one line and leaves the lock alone', async () => {
    const c = await begin(1)
    const m = c.managers[0]!
    const locks = () =>
      [m.stateDir, join(m.stateDir, 'raft')].flatMap((d) =>
        readdirSync(d)
          .filter((f) => f === 'LOCK')
          .map((f) => join(d, f)),
      )
    const before = locks()
    expect(before.length).toBeGreaterThan(0)
    for (let i = 0; i < 2; i++) {
      const r = await runCli([
        '--state-dir',
        m.stateDir,
        '--api',
        join(c.root, `intruder${i}.sock`),
        '--quiet',
      ])
      expect(r.code).toBe(1)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).not.toMatch(STACK)
      expect(locks()).toEqual(before)
    }
    const w = await m.request('POST', '/configs/create', { Name: 'still-mine', Data: 'bWluZQ==' })
    expect(w.status).toBe(201)
    const help = await runCli(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/usage: swarmkit-cluster/)
    const bad = await runCli(['--no-such-flag'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/usage: swarmkit-cluster/)
    expect(bad.stderr).not.toMatch(STACK)
  }, 180_000)

  it('item 5: after autolock is turned on, nothing on disk opens with the earlier key file', async () => {
    const c = await begin(1)
    const m = c.managers[0]!
    const marker = 'chaos-autolock-marker-before'
    const created = await m.request('POST', '/configs/create', {
      Name: 'before-autolock',
      Data: Buffer.from(marker).toString('base64'),
    })
    expect(created.status).toBe(201)
    const oldKeys = join(c.root, 'raft-keys.before')
    cpSync(join(m.stateDir, 'raft-keys'), oldKeys)
    const swarm = await m.request('GET', '/swarm')
    const up = await m.request('POST', `/swarm/update?version=${swarm.json.Version.Index}`, {
      ...swarm.json.Spec,
      EncryptionConfig: { AutoLockManagers: true },
    })
    expect(`${up.status} ${up.text}`).toMatch(/^200/)
    await m.stop()
    // Read a copy of the raft directory with the old key file, as whoever kept that file would.
    const copy = join(c.root, 'raft-copy')
    cpSync(join(m.stateDir, 'raft'), copy, { recursive: true })
    const keys = await KeyManager.open(oldKeys)
    const seen: string[] = []
    try {
      const storage = await FileLogStorage.open(copy, keys.hooks())
      try {
        const st = await storage.load()
        const all = [st.snapshot?.data, ...st.entries.map((e) => e.data)]
        for (const d of all) if (d && Buffer.from(d).includes(marker)) seen.push('a record')
      } finally {
        await storage.close()
      }
    } catch (err) {
      seen.length = 0
      expect(String(err)).toMatch(/corrupt|authenticat|open|key/i)
    } finally {
      keys.close()
    }
    expect(seen, 'records written before autolock still open with the old key file').toEqual([])
  }, 180_000)

  it('item 6: after a leader kill, new tasks run on the live managers long before the heartbeat grace ends', async () => {
    // A heartbeat period of 20 s: the dead leader's node would be marked down by heartbeats only after 60 s.
    const c = await begin(3, ['--heartbeat-period', '20000'])
    const old = await c.waitLeader()
    const oldId = (await nodes(old)).find((n) => n.Description.Hostname === old.name)!.ID
    await old.kill()
    const next = await c.waitLeader()
    const r = await next.request('POST', '/services/create', {
      Name: 'after-kill',
      TaskTemplate: { ContainerSpec: { Image: 'busybox:chaos' } },
      Mode: { Replicated: { Replicas: 6 } },
    })
    expect(r.status).toBe(201)
    type Task = { ServiceID: string; NodeID?: string; DesiredState: string; Status: { State: string } }
    let seen: Task[] = []
    await until(
      'six running tasks, none meant to run on the dead leader',
      async () => {
        const t = await next.request('GET', '/tasks')
        seen = (t.json as Task[]).filter((x) => x.ServiceID === r.json.ID && x.DesiredState === 'running')
        return (
          seen.length === 6 &&
          seen.every((x) => x.Status.State === 'running') &&
          !seen.some((x) => x.NodeID === oldId)
        )
      },
      40_000,
      () => seen.map((x) => `${x.NodeID === oldId ? 'DEAD ' : ''}${x.NodeID} ${x.Status.State}`).join('\n'),
    )
  }, 180_000)

  it('item 7: with quorum lost, a manager says the swarm has no leader', async () => {
    const c = await begin(3)
    const leader = await c.waitLeader()
    const survivor = c.managers.find((m) => m !== leader)!
    await Promise.all(c.managers.filter((m) => m !== survivor).map((m) => m.kill()))
    await until(
      'the no-leader answer',
      async () => {
        const r = await survivor.request('GET', '/nodes', undefined, 10_000)
        return r.status === 503 && /The swarm does not have a leader/.test(r.json?.message)
      },
      60_000,
      () => c.explain(),
    )
  }, 180_000)

  it('item 7: leaving one of two managers warns about raft quorum, not about the last manager', async () => {
    const c = await begin(2)
    const m2 = c.managers[1]!
    const r = await m2.request('POST', '/swarm/leave')
    expect(r.status).toBe(503)
    expect(r.json?.message).toMatch(/quorum/i)
    expect(r.json?.message).not.toMatch(/Removing the last manager/)
  }, 180_000)

  it('item 8: bad input gets a 400 and no stack trace: non-base64 data, API 1.0, a malformed unlock key', async () => {
    const c = await begin(1)
    const m = c.managers[0]!
    const secret = await m.request('POST', '/secrets/create', { Name: 'bad', Data: 'not base64!!' })
    expect(secret.status).toBe(400)
    const config = await m.request('POST', '/configs/create', { Name: 'bad', Data: '%%%' })
    expect(config.status).toBe(400)
    const old = await m.request('GET', '/v1.0/info')
    expect(old.status).toBe(400)
    expect(old.json?.message).toMatch(/client version 1\.0 is too old/)
    // A locked manager given a malformed key.
    const swarm = await m.request('GET', '/swarm')
    const up = await m.request('POST', `/swarm/update?version=${swarm.json.Version.Index}`, {
      ...swarm.json.Spec,
      EncryptionConfig: { AutoLockManagers: true },
    })
    expect(up.status).toBe(200)
    await m.stop()
    await m.start()
    const locked = await m.request('GET', '/info')
    expect(locked.json?.Swarm?.LocalNodeState).toBe('locked')
    const unlock = await m.request('POST', '/swarm/unlock', { UnlockKey: 'SWMKEY-1-!!!' })
    expect(unlock.status).toBeGreaterThanOrEqual(400)
    expect(unlock.status).toBeLessThan(500)
    expect(m.log()).not.toMatch(/TypeError/)
    expect(existsSync(m.socket)).toBe(true)
  }, 180_000)
})
