import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KvClient } from '@swarmkit/example-raft-kv'

import { freePort, until } from './wait.js'

type Log = (line: string) => void

export interface FailoverReport {
  readonly firstLeader: string
  readonly secondLeader: string
  readonly keysWritten: number
  readonly keysReadBack: number
  readonly restartedCaughtUp: boolean
}

export interface FailoverOptions {
  /** The raft-kv CLI to run (default: the built one, `@swarmkit/example-raft-kv/dist/cli.js`). */
  readonly cli?: string
  /** Node arguments before the script (e.g. a loader for running from source). */
  readonly nodeArgs?: readonly string[]
  readonly keys?: number
  readonly signal?: AbortSignal
}

interface Member {
  readonly id: string
  readonly raft: string
  readonly client: string
  readonly dir: string
  proc?: ChildProcess
  /** Resolves with each line the member prints. */
  lines: string[]
}

/**
 * Three raft-kv processes (raft over TCP, fsync'd file logs) on loopback: write keys, SIGKILL the leader,
 * see a new leader elected, keep writing, read everything back linearizably, restart the killed member
 * and see it catch up from the others.
 */
export async function raftKvFailoverDemo(log: Log, options: FailoverOptions = {}): Promise<FailoverReport> {
  const cli =
    options.cli ??
    new URL(import.meta.resolve('@swarmkit/example-raft-kv')).pathname.replace(/index\.js$/, 'cli.js')
  const keys = options.keys ?? 100
  const root = mkdtempSync(join(tmpdir(), 'swarmkit-demo-'))
  const members: Member[] = []
  for (const id of ['n1', 'n2', 'n3']) {
    members.push({
      id,
      raft: `127.0.0.1:${await freePort()}`,
      client: `127.0.0.1:${await freePort()}`,
      dir: join(root, id),
      lines: [],
    })
  }
  const peers = members.map((m) => `${m.id}=${m.raft}`).join(',')
  const start = (m: Member) => {
    m.lines = []
    const proc = spawn(
      process.execPath,
      [
        ...(options.nodeArgs ?? []),
        cli,
        '--id',
        m.id,
        '--data',
        m.dir,
        '--client',
        m.client,
        '--peers',
        peers,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    let rest = ''
    proc.stdout!.on('data', (chunk: Buffer) => {
      const text = rest + chunk.toString('utf8')
      const parts = text.split('\n')
      rest = parts.pop()!
      m.lines.push(...parts)
    })
    m.proc = proc
  }
  const leaderSeenBy = (m: Member) => {
    for (let i = m.lines.length - 1; i >= 0; i--) {
      const match = /^leader (\S+) term (\d+)/.exec(m.lines[i]!)
      if (match) return { id: match[1]!, term: Number(match[2]) }
    }
    return undefined
  }
  const agreedLeader = (alive: Member[], notId?: string) => {
    const seen = alive.map(leaderSeenBy)
    const first = seen[0]
    if (!first || first.id === notId) return undefined
    return seen.every((s) => s && s.id === first.id && s.term === first.term) ? first : undefined
  }
  const clients: KvClient[] = []
  const connect = async (m: Member) => {
    const c = await KvClient.connect(m.client)
    clients.push(c)
    return c
  }
  const value = (i: number) => new TextEncoder().encode(`value-${i}`)
  try {
    members.forEach(start)
    await until(
      'three members ready',
      () => (members.every((m) => m.lines.some((l) => l.startsWith('ready'))) ? true : undefined),
      30_000,
    )
    const first = await until('a leader', () => agreedLeader(members), 30_000)
    log(`three raft-kv processes on loopback; ${first.id} leads term ${first.term}`)

    const leader = members.find((m) => m.id === first.id)!
    const follower = members.find((m) => m.id !== first.id)!
    const viaFollower = await connect(follower)
    const half = Math.floor(keys / 2)
    await Promise.all(Array.from({ length: half }, (_, i) => viaFollower.put(`k${i}`, value(i))))
    log(
      `wrote ${half} keys through follower ${follower.id} (forwarded to the leader, committed by a majority)`,
    )

    leader.proc!.kill('SIGKILL')
    await new Promise((r) => leader.proc!.once('exit', r))
    const alive = members.filter((m) => m !== leader)
    const second = await until('a new leader', () => agreedLeader(alive, leader.id), 30_000)
    log(`SIGKILLed leader ${leader.id}; ${second.id} was elected in term ${second.term}`)

    // The client retries a put that fails while the election runs (NO_LEADER / DISCONNECTED).
    const survivor = await connect(alive[0]!)
    for (let i = half; i < keys; i++) {
      for (let attempt = 0; ; attempt++) {
        try {
          await survivor.put(`k${i}`, value(i))
          break
        } catch (err) {
          if (attempt > 50) throw err
          await new Promise((r) => setTimeout(r, 100))
        }
      }
    }
    log(`wrote ${keys - half} more keys with two of three members up`)

    const reader = await connect(alive[1]!)
    let readBack = 0
    for (let i = 0; i < keys; i++) {
      const got = await reader.get(`k${i}`)
      if (got && new TextDecoder().decode(got) === `value-${i}`) readBack++
    }
    log(`linearizable reads on ${alive[1]!.id}: ${readBack}/${keys} keys present`)

    start(leader)
    await until(
      `${leader.id} ready again`,
      () => (leader.lines.some((l) => l.startsWith('ready')) ? true : undefined),
      30_000,
    )
    const restarted = await connect(leader)
    const last = await restarted.get(`k${keys - 1}`)
    const restartedCaughtUp = last !== undefined && new TextDecoder().decode(last) === `value-${keys - 1}`
    log(`restarted ${leader.id} from its log and caught up: ${restartedCaughtUp ? 'yes' : 'no'}`)
    return {
      firstLeader: first.id,
      secondLeader: second.id,
      keysWritten: keys,
      keysReadBack: readBack,
      restartedCaughtUp,
    }
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()))
    for (const m of members) m.proc?.kill('SIGKILL')
    await Promise.all(
      members.map((m) =>
        m.proc && m.proc.exitCode === null && m.proc.signalCode === null
          ? new Promise((r) => m.proc!.once('exit', r))
          : undefined,
      ),
    )
    rmSync(root, { recursive: true, force: true })
  }
}
