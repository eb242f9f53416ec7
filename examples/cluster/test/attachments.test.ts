import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AssignmentsMessage } from '../src/assignments-message.js'
import { attachmentMethods } from '../src/attachment-methods.js'
import { isAttachmentTask } from '../src/attachments.js'
import { ATTACH_ALIASES_LABEL, ATTACH_NETWORK_LABEL, rewriteCreate } from '../src/container-attachments.js'
import type { ClusterNode } from '../src/index.js'
import type { NetworkViewUpdate } from '../src/network-view.js'
import { cleanup, docker, node, ok, waitFor } from './helpers.js'

describe('rewriteCreate (a container create for a swarm network)', () => {
  it('gives the engine `none`, the embedded resolver, and keeps the network and aliases in labels', () => {
    const out = rewriteCreate(
      {
        Image: 'busybox',
        Labels: { a: 'b' },
        HostConfig: { NetworkMode: 'apps', Memory: 1 },
        NetworkingConfig: { EndpointsConfig: { apps: { Aliases: ['x', 'y'] } } },
      },
      'apps',
    )
    expect(out).toEqual({
      Image: 'busybox',
      Labels: { a: 'b', [ATTACH_NETWORK_LABEL]: 'apps', [ATTACH_ALIASES_LABEL]: '["x","y"]' },
      HostConfig: { NetworkMode: 'none', Memory: 1, Dns: ['127.0.0.11'] },
      NetworkingConfig: { EndpointsConfig: {} },
    })
  })
})

describe('network attachments of containers (in-process cluster)', { timeout: 60_000 }, () => {
  let mgr: ClusterNode
  let wrk: ClusterNode
  let wrkId = ''
  const stop = new AbortController()
  const messages: AssignmentsMessage[] = []

  beforeAll(async () => {
    mgr = await node('at-mgr')
    wrk = await node('at-wrk')
    await ok(mgr, ['swarm', 'init'])
    const token = (await ok(mgr, ['swarm', 'join-token', '-q', 'worker'])).trim()
    await ok(wrk, ['swarm', 'join', '--token', token, mgr.daemon.manager!.joinAddr])
    wrkId = (await ok(wrk, ['info', '--format', '{{.Swarm.NodeID}}'])).trim()
    await ok(mgr, ['network', 'create', '-d', 'overlay', '--attachable', 'apps'])
    await ok(mgr, ['network', 'create', '-d', 'overlay', 'closed'])
    void (async () => {
      for await (const m of mgr.daemon.manager!.dispatcher.assignments(wrkId, stop.signal)) messages.push(m)
    })()
  })

  afterAll(async () => {
    stop.abort()
    await wrk?.close()
    await mgr?.close()
    cleanup()
  })

  const store = () => mgr.daemon.manager!.store
  const id = 'c0ffee'.repeat(10).slice(0, 64)

  it("refuses a network that is not attachable or does not exist, with moby's words", async () => {
    const m = attachmentMethods(store())
    expect(await m.attach(wrkId, { target: 'closed', containerId: id })).toEqual({
      error: { code: 'PermissionDenied', message: 'network closed not manually attachable' },
    })
    expect(await m.attach(wrkId, { target: 'nowhere', containerId: id })).toEqual({
      error: { code: 'NotFound', message: 'network nowhere not found' },
    })
    await expect(m.attach(wrkId, { target: 'apps', containerId: 'not hex' })).rejects.toThrow(
      /attach request/,
    )
  })

  it("over the worker's own session: an address from the managers, in its view, no agent work, no task listed", async () => {
    const answer = (await wrk.daemon.attachmentCall('attach', {
      target: 'apps',
      containerId: id,
      containerName: 'probe',
    })) as { attachmentId: string; networkId: string }
    expect(answer.networkId).toBe((await ok(mgr, ['network', 'inspect', '-f', '{{.ID}}', 'apps'])).trim())
    const task = await waitFor(() => {
      const t = store().view((tx) => tx.get('tasks', answer.attachmentId))
      return t?.networks[0]?.addresses.length ? t : undefined
    }, 'the attachment address')
    expect(task.nodeId).toBe(wrkId)
    expect(isAttachmentTask(task)).toBe(true)
    const address = task.networks[0]!.addresses[0]!.split('/')[0]!
    // The worker's network view carries it under the container's name.
    await waitFor(
      () =>
        messages
          .flatMap((m) => (m.view ? [m.view] : []))
          .some((u: NetworkViewUpdate) =>
            u.upsert.tasks.some((t) => t.name === 'probe' && Object.values(t.addresses).includes(address)),
          ),
      'the attachment in the worker view',
    )
    // Never an assignment for the agent, never a task of `docker node ps`, left alone by the orchestrator.
    expect(messages.flatMap((m) => m.update).some((a) => a.taskId === answer.attachmentId)).toBe(false)
    expect(await ok(mgr, ['node', 'ps', '-q', 'at-wrk'])).not.toContain(answer.attachmentId)
    const later = store().view((tx) => tx.get('tasks', answer.attachmentId))
    expect(later?.desiredState).toBe('running')
    // Only its node removes it.
    const mgrId = (await ok(mgr, ['info', '--format', '{{.Swarm.NodeID}}'])).trim()
    await expect(attachmentMethods(store()).detach(mgrId, answer.attachmentId)).rejects.toThrow(
      /doesn't belong to this node/,
    )
    await wrk.daemon.attachmentCall('detach', answer.attachmentId)
    expect(store().view((tx) => tx.get('tasks', answer.attachmentId))).toBeUndefined()
  })

  it("refuses `docker network rm` while a container is attached, with moby's words", async () => {
    await ok(mgr, ['network', 'create', '-d', 'overlay', '--attachable', 'busy'])
    const netId = (await ok(mgr, ['network', 'inspect', '-f', '{{.ID}}', 'busy'])).trim()
    const answer = (await wrk.daemon.attachmentCall('attach', { target: 'busy', containerId: id })) as {
      attachmentId: string
    }
    const refused = await docker(mgr, ['network', 'rm', 'busy'])
    expect(refused.code).not.toBe(0)
    expect(refused.stderr).toContain(`network ${netId} is in use by task ${answer.attachmentId}`)
    expect((await ok(mgr, ['network', 'ls', '--format', '{{.Name}}'])).split('\n')).toContain('busy')
    // Once the container is detached the network goes.
    await wrk.daemon.attachmentCall('detach', answer.attachmentId)
    expect((await ok(mgr, ['network', 'rm', 'busy'])).trim()).toBe('busy')
  })

  // Last: it removes the worker from the swarm.
  it("drops a removed node's attachments (moby orphans them), so their network can go", async () => {
    await ok(mgr, ['network', 'create', '-d', 'overlay', '--attachable', 'left'])
    const answer = (await wrk.daemon.attachmentCall('attach', { target: 'left', containerId: id })) as {
      attachmentId: string
    }
    expect(store().view((tx) => tx.get('tasks', answer.attachmentId))).toBeDefined()
    await ok(mgr, ['node', 'rm', '--force', wrkId])
    expect(store().view((tx) => tx.get('tasks', answer.attachmentId))).toBeUndefined()
    expect((await ok(mgr, ['network', 'rm', 'left'])).trim()).toBe('left')
  })
})
