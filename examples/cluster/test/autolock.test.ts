import { afterAll, describe, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, docker, node, ok, rows, waitFor } from './helpers.js'

describe('autolock: docker swarm init --autolock, unlock-key, unlock after a restart', () => {
  let n: ClusterNode | undefined
  afterAll(() => closeNodes(n))

  it('locks a restarted manager until it is given the unlock key', async () => {
    n = await node('mgr1')
    const init = await ok(n, ['swarm', 'init', '--autolock'])
    const key = /SWMKEY-1-[A-Za-z0-9+/]{43}/.exec(init)?.[0]
    expect(key).toBeDefined()
    expect((await ok(n, ['swarm', 'unlock-key', '-q'])).trim()).toBe(key)
    await ok(n, ['service', 'create', '-d', '--no-resolve-image', '--name', 'web', 'nginx:alpine'])
    const m = n.daemon.manager!
    await waitFor(() => m.keyFileUnlockKey === key, 'key file wrapped under the unlock key')

    await n.close()
    n = await node('mgr1')
    expect(await ok(n, ['info'])).toMatch(/Swarm: locked/)
    const refused = await docker(n, ['node', 'ls'])
    expect(refused.stderr).toContain(
      'Error response from daemon: Swarm is encrypted and needs to be unlocked before it can be used.',
    )
    const wrong = await docker(
      n,
      ['swarm', 'unlock'],
      'SWMKEY-1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n',
    )
    expect(wrong.stderr).toContain('swarm could not be unlocked: invalid key provided')
    await ok(n, ['swarm', 'unlock'], `${key}\n`)
    expect(rows(await ok(n, ['node', 'ls'])).map((r) => r[1])).toEqual(['mgr1'])
    expect((await ok(n, ['service', 'ls', '--format', '{{.Name}}'])).trim()).toBe('web')
    const again = await docker(n, ['swarm', 'unlock'], `${key}\n`)
    expect(again.stderr).toContain('swarm is not locked')
  })

  it('turns autolock off and on with docker swarm update', async () => {
    expect(await ok(n!, ['swarm', 'update', '--autolock=false'])).toContain('Swarm updated.')
    await waitFor(() => n!.daemon.manager!.keyFileUnlockKey === undefined, 'key file in the clear')
    const on = await ok(n!, ['swarm', 'update', '--autolock=true'])
    const key = /SWMKEY-1-[A-Za-z0-9+/]{43}/.exec(on)?.[0]
    expect(key).toBeDefined()
    const rotated = await ok(n!, ['swarm', 'unlock-key', '--rotate', '-q'])
    expect(rotated.trim()).toMatch(/^SWMKEY-1-/)
    expect(rotated.trim()).not.toBe(key)
  })
})
