import { createServer, type Server } from 'node:net'
import { afterAll, expect, it } from 'vitest'
import type { ClusterNode } from '../src/index.js'
import { closeNodes, initSwarm, node, ok } from './helpers.js'

// A manager restarted from its state directory listens again on the port it had. While it was down, another
// program's outgoing connection on loopback may have got that port as its source port (the kernel hands out
// 127.0.0.1 and ports from the range listeners on port 0 get theirs from). The test nodes listen on an
// address of their own, so such a connection cannot hold their port. Here a listener on 127.0.0.1 stands for
// that connection: node's own sockets set SO_REUSEADDR, which a connected socket of another program lacks, and
// a listener conflicts as that socket does.
let restarted: ClusterNode | undefined
let holder: Server | undefined
afterAll(async () => {
  holder?.close()
  await closeNodes(restarted)
})

it('restarts a manager on its port while another program holds that port on 127.0.0.1', async () => {
  const first = await initSwarm('restart-port')
  const joinAddr = first.daemon.manager!.joinAddr
  const port = Number(joinAddr.slice(joinAddr.lastIndexOf(':') + 1))
  await first.close()

  holder = createServer()
  await new Promise<void>((resolve, reject) =>
    holder!.once('error', reject).listen(port, '127.0.0.1', resolve),
  )

  restarted = await node('restart-port')
  expect(restarted.daemon.manager!.joinAddr).toBe(joinAddr)
  expect(await ok(restarted, ['info', '--format', '{{.Swarm.LocalNodeState}}'])).toMatch(/active/)
})
