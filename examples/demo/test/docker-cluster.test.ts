import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dockerClusterDemo } from '../src/docker-cluster.js'
import { bundleCli } from './bundle.js'

let bundle: Awaited<ReturnType<typeof bundleCli>>
beforeAll(async () => {
  bundle = await bundleCli(join(import.meta.dirname, '../../cluster/src/cli.ts'))
})
afterAll(() => bundle.remove())

describe('dockerClusterDemo', () => {
  it('lets the docker CLI init, join, create and scale a service over two nodes, reachable through the mesh', async () => {
    const lines: string[] = []
    const report = await dockerClusterDemo((l) => lines.push(l), { cli: bundle.cli, replicas: 4 })
    expect(report.nodes).toMatch(/manager1 +Ready +Active +Leader/)
    expect(report.nodes).toMatch(/worker1 +Ready +Active/)
    expect(report.services).toMatch(/web +replicated +4\/4/)
    expect(report.runningTasks).toBe(4)
    expect(report.nodesWithTasks).toBe(2)
    expect(report.meshNodes).toBe(2)
    expect(report.meshTasks).toBe(4) // round-robin over the tasks of both nodes, from either node
  }, 120_000)
})
