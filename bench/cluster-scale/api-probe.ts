// The API client role of bench/cluster-scale: a child process that asks the managers' Engine APIs (round
// robin over those that answer) for `node ls`, `service ls` and `info`, one request at a time with a short
// pause, and keeps each latency under the phase the parent names. It asks what the docker CLI 28 asks
// (/work/shared/DOCKER-API.md): `service ls` is `GET /services?status=true`, and every request says
// `Accept-Encoding: gzip` (Go's HTTP client does, and decompresses transparently). It also keeps the time to
// the answer's first byte, which tells the manager's wait and work (its event loop, the handler) from the
// transfer of the body (written only as fast as the manager's loop comes round to the socket).
import { request } from 'node:http'

/**
 * GET `path` on the Engine API at `socket`: the status once the whole body has arrived, and when its first
 * byte did (performance.now()). The body is read and dropped: parsing `node ls` of 5,000 nodes (3.5 MB) in
 * this process took CPU from the cluster on the same cores, and the probe only times the answer.
 */
function timedGet(
  socket: string,
  path: string,
  timeoutMs: number,
): Promise<{ status: number; firstByteAt: number }> {
  return new Promise((resolve, reject) => {
    const headers = { 'Accept-Encoding': 'gzip', 'User-Agent': 'Docker-Client/28.2.2 (linux)' }
    const req = request({ socketPath: socket, method: 'GET', path: `/v1.47${path}`, headers }, (res) => {
      const firstByteAt = performance.now()
      res.on('data', () => {})
      res.on('error', reject)
      res.on('end', () => {
        clearTimeout(timer)
        resolve({ status: res.statusCode ?? 0, firstByteAt })
      })
    })
    const timer = setTimeout(() => req.destroy(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs)
    req.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    req.end()
  })
}

const ENDPOINTS = { 'node ls': '/nodes', 'service ls': '/services?status=true', info: '/info' } as const

export async function apiProbe(sockets: string[]): Promise<void> {
  let phase = 'idle'
  let stopped = false
  const samples: Record<string, Record<string, number[]>> = {}
  const errors: Record<string, number> = {}
  process.on('message', (m: any) => {
    if (m.op === 'phase') phase = m.phase
    else if (m.op === 'report') {
      stopped = true
      process.send!({ op: 'report', id: m.id, samples, errors })
    }
  })
  let round = 0
  while (!stopped) {
    round++
    for (const [i, [name, path]] of Object.entries(ENDPOINTS).entries()) {
      // Each request goes to the next manager, each round starting one further: with three endpoints and
      // three managers a plain rotation sent every `node ls` to the same manager.
      const socket = sockets[(round + i) % sockets.length]!
      const p = phase
      const t0 = performance.now()
      try {
        const { status, firstByteAt } = await timedGet(socket, path, 30_000)
        if (status !== 200) throw new Error(String(status))
        const byPhase = (samples[p] ??= {})
        ;(byPhase[name] ??= []).push(performance.now() - t0)
        ;(byPhase[`${name} first byte`] ??= []).push(firstByteAt - t0)
      } catch {
        errors[p] = (errors[p] ?? 0) + 1
      }
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}
