// `docker node ls` answers kept between requests. At 5,000 nodes the answer is 3.5 MB: joining the nodes'
// kept texts and encoding them took the manager's loop milliseconds per request, and a gzip for the CLI
// (json-body.ts) tens more on the thread pool. Nodes change seldom once joined (heartbeats write nothing to the
// store), so the answer is built, encoded and compressed once per set of node objects: stored objects are
// immutable, a changed node is a new object, and comparing the listed objects by identity is microseconds.
// When the nodes did change (the join), the answer is copied together from each node's kept bytes: joining
// 5,000 strings and encoding the result cost several times the copy.

import type { Node } from '@swarmkit/store'
import { type JsonBody, jsonBody } from '../json-body.js'

export interface NodeListCache {
  /**
   * The answer for `nodes` (listed in store order) under `leader` and the request's `filters`: the kept
   * one when all three are what it was built for, else `build()`'s, kept.
   */
  answer(nodes: readonly Node[], leader: string | null, filters: string | null, build: () => Buffer): JsonBody
}

const OPEN = Buffer.from('[')
const COMMA = Buffer.from(',')
const CLOSE = Buffer.from(']')

/** A JSON array of `items`, each one JSON value's bytes. */
export function jsonArray(items: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [OPEN]
  for (let i = 0; i < items.length; i++) {
    if (i > 0) parts.push(COMMA)
    parts.push(items[i]!)
  }
  parts.push(CLOSE)
  return Buffer.concat(parts)
}

export function nodeListCache(): NodeListCache {
  let kept:
    | { nodes: readonly Node[]; leader: string | null; filters: string | null; body: JsonBody }
    | undefined
  const same = (a: readonly Node[], b: readonly Node[]) => {
    if (a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
    return true
  }
  return {
    answer(nodes, leader, filters, build) {
      if (kept && kept.leader === leader && kept.filters === filters && same(kept.nodes, nodes))
        return kept.body
      const body = jsonBody(build())
      kept = { nodes, leader, filters, body }
      return body
    },
  }
}
