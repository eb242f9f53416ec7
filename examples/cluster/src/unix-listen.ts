// Listening on a unix socket path that a crashed process may have left behind: the file stays after a
// SIGKILL and a new listen fails with EADDRINUSE. A path nobody answers on is stale and is replaced (as
// dockerd does with its socket); one that answers belongs to a live process and is left alone.

import { rmSync } from 'node:fs'
import { connect, type Server } from 'node:net'

/** Whether something accepts connections on the socket `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

function listenOnce(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (err: Error) => reject(err)
    server.once('error', fail)
    server.listen(path, () => {
      server.off('error', fail)
      resolve()
    })
  })
}

/** Listens on `path`, replacing a stale socket file left by a process that is gone. */
export async function listenUnix(server: Server, path: string): Promise<void> {
  try {
    await listenOnce(server, path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || (await answers(path))) throw err
    rmSync(path, { force: true })
    await listenOnce(server, path)
  }
}
