import type { Node } from '@swarmkit/store'

/** A worker node object as a store test creates it: ready and active, on loopback. */
export function readyWorker(id: string): Omit<Node, 'meta'> {
  return {
    id,
    spec: { labels: {}, role: 'worker', availability: 'active' },
    role: 'worker',
    status: { state: 'ready', addr: '127.0.0.1' },
  }
}
