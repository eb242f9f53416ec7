// The etcd side of the comparison: Debian's etcd-server (installed with apt-get when missing), a three-member
// cluster on loopback ports in a temporary directory, and a load driver on the etcd3 npm client.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { Etcd3 } from 'etcd3'
import { freePorts, measureWriters, type RawLoad, waitFor, warmUp } from './common.js'

/** The etcd binary, installing Debian's etcd-server if it is not there yet. */
export function ensureEtcd(): string {
  const have = spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' })
  if (have.status === 0 && have.stdout.trim()) return have.stdout.trim()
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  console.log('etcd not found: installing Debian etcd-server with apt-get')
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'etcd-server'], {
    stdio: 'inherit',
    env,
  })
  if (r.status !== 0 || !existsSync('/usr/bin/etcd')) throw new Error('could not install etcd-server')
  return '/usr/bin/etcd'
}

export function etcdVersion(bin: string): string {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  return /etcd Version: (\S+)/.exec(r.stdout)?.[1] ?? 'unknown'
}

export interface EtcdCluster {
  readonly endpoints: string[]
  /** The members' process IDs, for their CPU time. */
  readonly pids: number[]
  stop(): Promise<void>
}

/** Starts three etcd members on 127.0.0.1 with their data under `dir`; resolves once the cluster answers. */
export async function startEtcdCluster(bin: string, dir: string): Promise<EtcdCluster> {
  const ports = await freePorts(6)
  const names = ['e1', 'e2', 'e3']
  const peer = (k: number) => `http://127.0.0.1:${ports[2 * k + 1]}`
  const client = (k: number) => `http://127.0.0.1:${ports[2 * k]}`
  const initial = names.map((n, k) => `${n}=${peer(k)}`).join(',')
  const procs: ChildProcess[] = []
  let stderr = ''
  for (let k = 0; k < 3; k++) {
    const data = join(dir, names[k]!)
    mkdirSync(data, { recursive: true })
    const p = spawn(
      bin,
      [
        `--name=${names[k]}`,
        `--data-dir=${data}`,
        `--listen-client-urls=${client(k)}`,
        `--advertise-client-urls=${client(k)}`,
        `--listen-peer-urls=${peer(k)}`,
        `--initial-advertise-peer-urls=${peer(k)}`,
        `--initial-cluster=${initial}`,
        '--initial-cluster-state=new',
        `--initial-cluster-token=bench-${process.pid}`,
        '--logger=zap',
        '--log-level=error',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    p.stderr!.on('data', (d) => {
      stderr = (stderr + d).slice(-4000)
    })
    procs.push(p)
  }
  const endpoints = names.map((_, k) => client(k))
  const stop = async () => {
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve()
            p.once('exit', () => resolve())
            p.kill('SIGTERM')
          }),
      ),
    )
  }
  const probe = new Etcd3({ hosts: endpoints })
  try {
    await waitFor(async () => {
      for (const p of procs) if (p.exitCode !== null) throw new Error(`etcd exited: ${stderr}`)
      await probe.put('bench/ready').value('1')
      return true
    }, 30_000)
  } catch (e) {
    await stop()
    throw e
  } finally {
    probe.close()
  }
  return { endpoints, pids: procs.map((p) => p.pid!), stop }
}

/**
 * Writes 256-byte values with `writers` concurrent writers for `ms` through the etcd3 client, keys under
 * `prefix`. `gate` is awaited after the warm-up: the clock starts when it resolves.
 */
export async function etcdLoad(
  endpoints: string[],
  writers: number,
  ms: number,
  prefix: string,
  gate: () => Promise<void>,
): Promise<RawLoad> {
  const client = new Etcd3({ hosts: endpoints })
  const value = Buffer.alloc(256, 0x61)
  try {
    const write = (w: number, n: number): Promise<void> =>
      client
        .put(`${prefix}/${w}/${n % 1000}`)
        .value(value)
        .then(() => {})
    await warmUp(writers, write)
    await gate()
    return await measureWriters(writers, ms, write)
  } finally {
    client.close()
  }
}

/** The client endpoint of the member that is leader now (the one whose status names itself as leader). */
export async function etcdLeaderEndpoint(endpoints: readonly string[]): Promise<string> {
  for (const endpoint of endpoints) {
    const client = new Etcd3({ hosts: endpoint })
    try {
      const status = await client.maintenance.status()
      if (status.header.member_id === status.leader) return endpoint
    } finally {
      client.close()
    }
  }
  throw new Error('no etcd member says it is the leader')
}
