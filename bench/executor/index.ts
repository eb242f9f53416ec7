// bench/executor: time from `docker service create --replicas N` to N running containers on a Docker
// Engine, against starting the same N containers with `docker run` on the same engine in the same run
// (N concurrent `docker run -d`, each with no network, as the swarm path's containers start). N = 1 and
// N = 50; the median of three runs each. The swarm path is a one-node cluster whose docker executor also
// gives each container its network sandbox (the overlay package's Linux driver) when root allows.
//
// The engine: SWARMKIT_TEST_ENGINE, or the private one scripts/test-dockerd.sh starts (root). Without an
// engine the benchmark says so and exits 0.

import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { dockerExecutor, localTaskNetworking, startNode, taskNetworkingSupported } from '@swarmkit/cluster'
import {
  buildImages,
  IMAGES,
  removeContainers,
  testEngine,
} from '../../examples/cluster/test/engine-helpers.js'

const run = promisify(execFile)
const SIZES = [1, 50]
const RUNS = 3

const engine = await testEngine().catch((err) => {
  console.log(`no Docker Engine: ${(err as Error).message}`)
  return undefined
})
if (!engine) {
  console.log('skipped: no Docker Engine (set SWARMKIT_TEST_ENGINE or run as root with docker.io installed)')
  process.exit(0)
}
await buildImages(engine)
const config = mkdtempSync(join(tmpdir(), 'bench-executor-config-'))
const docker = (host: string, args: string[]) =>
  run('docker', args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DOCKER_HOST: host, DOCKER_CONFIG: config },
    maxBuffer: 16 * 1024 * 1024,
  })

const running = async (filter: string): Promise<number> =>
  (await docker(engine, ['ps', '-q', '--filter', filter])).stdout.split('\n').filter(Boolean).length

async function until(probe: () => Promise<boolean>, what: string, ms = 300_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** N concurrent `docker run -d`: ms until all N run. */
async function direct(n: number, round: number): Promise<number> {
  const label = `swarmkit-bench=direct-${process.pid}-${n}-${round}`
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      docker(engine!, [
        'run',
        '-d',
        '--network',
        'none',
        '--label',
        label,
        '--name',
        `bench-${process.pid}-${n}-${round}-${i}`,
        IMAGES.webV1,
      ]),
    ),
  )
  await until(async () => (await running(`label=${label}`)) === n, `${n} direct containers`)
  const ms = performance.now() - t0
  const ids = (await docker(engine!, ['ps', '-aq', '--filter', `label=${label}`])).stdout
    .split('\n')
    .filter(Boolean)
  if (ids.length) await docker(engine!, ['rm', '-f', ...ids])
  return ms
}

const networking = await taskNetworkingSupported()
const stateRoot = mkdtempSync(join(tmpdir(), 'bench-executor-'))
const node = await startNode({
  stateDir: join(stateRoot, 'n1'),
  apiAddress: '127.0.0.1:0',
  hostname: 'bench',
  listenAddr: '127.0.0.1:0',
  routingMesh: false,
  executor: dockerExecutor({
    engineAddr: engine,
    hostname: 'bench',
    secretsDir: join('/dev/shm', `bench-executor-${process.pid}`),
    ...(networking ? { networking: localTaskNetworking() } : {}),
  }),
})
await docker(node.dockerHost, ['swarm', 'init'])
const nodeId = node.daemon.nodeId

/** `docker service create --replicas N`: ms until N containers run. */
async function swarm(n: number, round: number): Promise<number> {
  const name = `bench${n}r${round}`
  const t0 = performance.now()
  await docker(node.dockerHost, [
    'service',
    'create',
    '-d',
    '--no-resolve-image',
    '--name',
    name,
    '--replicas',
    String(n),
    '-p',
    `${28_000 + n * 10 + round}:80`,
    IMAGES.webV1,
  ])
  await until(
    async () => (await running(`label=com.docker.swarm.service.name=${name}`)) === n,
    `${n} swarm containers`,
  )
  const ms = performance.now() - t0
  await docker(node.dockerHost, ['service', 'rm', name])
  await until(
    async () => (await running(`label=com.docker.swarm.node.id=${nodeId}`)) === 0,
    'service removed',
  )
  return ms
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const results: Record<string, unknown>[] = []
try {
  for (const n of SIZES) {
    const d: number[] = []
    const s: number[] = []
    for (let round = 0; round < RUNS; round++) {
      // Alternate the order so that neither path always runs on a warmer engine.
      if (round % 2 === 0) {
        d.push(await direct(n, round))
        s.push(await swarm(n, round))
      } else {
        s.push(await swarm(n, round))
        d.push(await direct(n, round))
      }
    }
    const row = {
      n,
      docker_run_ms: Math.round(median(d)),
      service_create_ms: Math.round(median(s)),
      ratio: Number((median(s) / median(d)).toFixed(2)),
      docker_run_runs_ms: d.map(Math.round),
      service_create_runs_ms: s.map(Math.round),
      networking,
    }
    results.push(row)
    console.log(JSON.stringify(row))
  }
} finally {
  await node.close()
  await removeContainers(engine, [nodeId]).catch(() => {})
  rmSync(stateRoot, { recursive: true, force: true })
  rmSync(config, { recursive: true, force: true })
}
console.table(results.map(({ docker_run_runs_ms: _a, service_create_runs_ms: _b, ...r }) => r))
