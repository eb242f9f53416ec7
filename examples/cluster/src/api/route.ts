// What every Engine API route module shares: the route and reply shapes, the view/update helpers over the
// node's manager, and the small request checks (object lookup by ID or name, the `?version=` of an update).

import type { ServerResponse } from 'node:http'
import { isStoreError, type ReadTx, type Tx } from '@swarmkit/store'
import type { Daemon } from '../daemon.js'
import { ApiError, MESSAGES } from '../errors.js'
import type { JsonBody } from '../json-body.js'
import type { Manager } from '../manager.js'

export const API_VERSION = '1.50'
export const MIN_API_VERSION = '1.24'

export type Query = URLSearchParams
export type Handler = (req: { body: unknown; query: Query; params: string[] }) => Promise<Reply> | Reply
export interface Reply {
  status?: number
  json?: unknown
  /** The JSON body already serialized (a large list built from texts kept per object); wins over `json`. */
  text?: string
  /** The JSON body as bytes kept between requests (with their gzip); wins over `text` and `json`. */
  body?: JsonBody
  /** Writes the body itself (log streams). */
  stream?: (res: ServerResponse) => void
}
/** Method, path pattern (its groups are the handler's `params`), handler. */
export type Route = [string, RegExp, Handler]

/** What a route module is given: the daemon, and its manager's store (a 503 while it has none). */
export interface RouteContext {
  readonly d: Daemon
  readonly mgr: () => Manager
  readonly view: <R>(fn: (tx: ReadTx) => R) => R
  readonly update: <R>(fn: (tx: Tx) => R) => Promise<R>
}

export function routeContext(d: Daemon): RouteContext {
  const mgr = () => d.requireManager()
  const view = <R>(fn: (tx: ReadTx) => R): R => mgr().store.view(fn)
  const update = async <R>(fn: (tx: Tx) => R): Promise<R> => mgr().store.update(fn)
  return { d, mgr, view, update }
}

export function lookup<T extends 'nodes' | 'services' | 'networks' | 'secrets' | 'configs' | 'tasks'>(
  tx: ReadTx,
  table: T,
  ref: string,
  noun: string,
) {
  try {
    return tx.lookup(table, ref)
  } catch (err) {
    if (isStoreError(err) && err.code === 'NOT_FOUND') throw new ApiError(404, `${noun} ${ref} not found`)
    throw err
  }
}

export function version(query: Query): number {
  const v = Number(query.get('version') ?? 'NaN')
  if (!Number.isSafeInteger(v) || v < 0) throw new ApiError(400, 'invalid version: expected an integer')
  return v
}

export function checkVersion(current: number, wanted: number): void {
  if (current !== wanted) throw new ApiError(500, MESSAGES.outOfSequence)
}
