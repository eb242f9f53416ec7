import { createServer } from 'node:http'
import { ClusterStore } from '@swarmkit/store'
import { describe, expect, it } from 'vitest'
import { ClusterEvents, type EventMessage, writeServerSentEvents } from '../src/index.js'
import { waitFor } from './helpers.js'

describe('ClusterEvents over server-sent events (for a browser view)', () => {
  it('streams each event as a data line of JSON, filtered, until the client leaves', async () => {
    const store = new ClusterStore()
    const events = new ClusterEvents(store)
    const server = createServer((req, res) => {
      const stop = new AbortController()
      req.on('close', () => stop.abort())
      void writeServerSentEvents(
        events.subscribe({ filters: new Map([['type', ['secret']]]), signal: stop.signal }),
        res,
      )
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    const { port } = server.address() as { port: number }
    const stop = new AbortController()
    const r = await fetch(`http://127.0.0.1:${port}/`, { signal: stop.signal })
    expect(r.headers.get('content-type')).toBe('text/event-stream')
    let text = ''
    const reading = (async () => {
      const decoder = new TextDecoder()
      for await (const chunk of r.body!) text += decoder.decode(chunk as Uint8Array)
    })().catch(() => {})
    await store.update((tx) => {
      tx.create('networks', {
        id: 'n1',
        spec: { name: 'net', labels: {}, driverConfig: { name: 'overlay' } },
      } as never)
      tx.create('secrets', { id: 's1', spec: { name: 'pw', labels: {}, data: new Uint8Array([1]) } })
    })
    await waitFor(() => text.includes('\n\n'), 'one event')
    const frames = text.trim().split('\n\n')
    expect(frames).toHaveLength(1)
    const [id, data] = frames[0]!.split('\n')
    expect(id).toMatch(/^id: \d{19}$/)
    const m = JSON.parse(data!.slice('data: '.length)) as EventMessage
    expect([m.Type, m.Action, m.Actor.ID, m.Actor.Attributes.name]).toEqual(['secret', 'create', 's1', 'pw'])
    expect(String(m.timeNano)).toBe(id!.slice(4))
    stop.abort()
    await reading
    events.close()
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })
})
