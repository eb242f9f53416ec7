// Picking a free TCP port before a listener starts, for addresses that must be known (and recorded) first.

import { createServer as createNetServer, type Server } from 'node:net'

/** Picks a free TCP port on `host` (for listeners whose address must be known before they start). */
export async function freePort(host: string): Promise<number> {
  const server: Server = createNetServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => resolve())
  })
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}
