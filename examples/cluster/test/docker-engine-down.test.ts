// An engine that goes away mid-task (its socket stops answering: here a proxy in front of the test engine
// is cut), then comes back: the task fails with the docker CLI's own words, the node keeps working, and
// the service runs again once the engine answers; nothing is left behind.
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { buildImages, containersOf, IMAGES, removeContainers, testEngine } from './engine-helpers.js'
import { cleanup, docker, dumpTasks, node, ok, waitFor } from './helpers.js'

const engine = await testEngine()

/** A unix socket that forwards to the engine until cut. */
function engineProxy(target: string, path: string) {
  let server: Server | undefined
  const sockets = new Set<Socket>()
  const targetPath = target.slice('unix://'.length)
  return {
    addr: `unix://${path}`,
    start: () =>
      new Promise<void>((resolve) => {
        server = createServer((c) => {
          const u = createConnection(targetPath)
          sockets.add(c).add(u)
          const done = () => {
            c.destroy()
            u.destroy()
          }
          c.on('error', done).on('close', done)
          u.on('error', done).on('close', done)
          c.pipe(u).pipe(c)
        })
        server.listen(path, () => resolve())
      }),
    cut: async () => {
      for (const s of sockets) s.destroy()
      sockets.clear()
      await new Promise<void>((r) => (server ? server.close(() => r()) : r()))
      server = undefined
    },
  }
}

describe.skipIf(!engine?.startsWith('unix://'))(
  'an engine that goes away mid-task',
  { timeout: 180_000 },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'swarmkit-engine-proxy-'))
    const proxy = engineProxy(engine ?? 'unix:///nonexistent', join(dir, 'docker.sock'))
    let mgr: ClusterNode
    let nodeIds: string[] = []
    beforeAll(async () => {
      await buildImages(engine!)
      await proxy.start()
      mgr = await node('down-mgr', { engineAddr: proxy.addr })
      await ok(mgr, ['swarm', 'init'])
      nodeIds = [mgr.daemon.nodeId]
    }, 120_000)
    afterAll(async () => {
      await mgr?.close()
      await proxy.cut()
      if (engine) await removeContainers(engine, nodeIds)
      rmSync(dir, { recursive: true, force: true })
      cleanup()
    })

    it("fails the task with the CLI's words, keeps the node working, and runs the service again later", async () => {
      await ok(mgr, ['service', 'create', '-d', '--name', 'w', '--stop-grace-period', '1s', IMAGES.webV1])
      await waitFor(
        async () =>
          (await ok(mgr, ['service', 'ps', 'w', '--format', '{{.CurrentState}}'])).startsWith('Running'),
        'w running',
        60_000,
      )
      await proxy.cut()
      const text = `Cannot connect to the Docker daemon at ${proxy.addr}. Is the docker daemon running?`
      await waitFor(
        async () =>
          (await ok(mgr, ['service', 'ps', 'w', '--no-trunc', '--format', '{{.Error}}'])).includes(text),
        'a task failed with the engine gone',
        60_000,
        () => dumpTasks(mgr),
      )
      // The node answers everything swarm; what goes to the engine fails with the same words.
      expect((await docker(mgr, ['node', 'ls'])).code).toBe(0)
      const psOut = await docker(mgr, ['ps'])
      expect(psOut.code).not.toBe(0)
      expect(psOut.stderr).toContain(text)
      await proxy.start()
      await waitFor(
        async () =>
          (await containersOf(engine!, nodeIds)).filter((l) => l.endsWith(' running')).length === 1 &&
          (await ok(mgr, ['service', 'ls', '--format', '{{.Replicas}}'])).trim() === '1/1',
        'w running again, one container running',
        90_000,
        () => dumpTasks(mgr),
      )
      await ok(mgr, ['service', 'rm', 'w'])
      await waitFor(async () => (await containersOf(engine!, nodeIds)).length === 0, 'nothing left', 60_000)
    })
  },
)
