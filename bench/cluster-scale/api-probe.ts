// The API client role of bench/cluster-scale: a child process that asks the managers' Engine APIs (round
// robin over those that answer) for `node ls`, `service ls` and `info`, one request at a time with a short
// pause, and keeps each latency under the phase the parent names.
import { engineRequest } from '../../examples/cluster/test/chaos/engine-client.js'

const ENDPOINTS = { 'node ls': '/nodes', 'service ls': '/services', info: '/info' } as const

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
        const r = await engineRequest(socket, 'GET', path, undefined, 30_000)
        if (r.status !== 200) throw new Error(String(r.status))
        const byPhase = (samples[p] ??= {})
        ;(byPhase[name] ??= []).push(performance.now() - t0)
      } catch {
        errors[p] = (errors[p] ?? 0) + 1
      }
      await new Promise((r) => setTimeout(r, 200))
    }
  }
}
