// Engine API: `docker secret` and `docker config`, the same shape: named blobs of at most 500 KiB (a secret
// may not be empty).

import { generateId } from '@swarmkit/store'
import { updateBlob } from '../blob-update.js'
import { configToDocker, labels, secretToDocker } from '../docker-json.js'
import { ApiError } from '../errors.js'
import { ACCEPTED, blobFilter, parseFilters } from '../filters.js'
import { goBase64Error } from '../go-base64.js'
import { lookup, type Route, type RouteContext, version } from './route.js'

export function secretAndConfigRoutes(ctx: RouteContext): Route[] {
  return [
    ...blobRoutes(ctx, 'secrets', 'secret', secretToDocker, 1),
    ...blobRoutes(ctx, 'configs', 'config', configToDocker, 0),
  ]
}

/** List, inspect, create and remove for a table of named blobs (secrets, configs). */
function blobRoutes<T extends 'secrets' | 'configs'>(
  { mgr, view, update }: RouteContext,
  table: T,
  noun: string,
  toDocker: (o: ReturnType<typeof lookup<T>>) => Record<string, unknown>,
  minBytes: number,
): Route[] {
  return [
    [
      'GET',
      new RegExp(`^/${table}$`),
      ({ query }) => {
        const match = blobFilter(parseFilters(query.get('filters'), ACCEPTED[table]))
        return {
          json: view((tx) =>
            tx
              .find(table)
              .filter(match)
              .map((o) => toDocker(o as ReturnType<typeof lookup<T>>)),
          ),
        }
      },
    ],
    [
      'GET',
      new RegExp(`^/${table}/([^/]+)$`),
      ({ params }) => ({ json: view((tx) => toDocker(lookup(tx, table, params[0]!, noun))) }),
    ],
    [
      'POST',
      new RegExp(`^/${table}/create$`),
      async ({ body }) => {
        const b = (body ?? {}) as Record<string, unknown>
        const name = typeof b.Name === 'string' ? b.Name : ''
        if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(name))
          throw new ApiError(400, `invalid ${noun} name "${name}"`)
        if (typeof b.Data !== 'string') throw new ApiError(400, `${noun} data must be base64`)
        const notBase64 = goBase64Error(b.Data)
        if (notBase64) throw new ApiError(400, `invalid JSON: ${notBase64}`)
        const data = new Uint8Array(Buffer.from(b.Data, 'base64'))
        if (data.length < minBytes || data.length > 500 * 1024)
          throw new ApiError(
            400,
            minBytes > 0
              ? `${noun} data must be between ${minBytes} byte and 500 KiB`
              : `${noun} data must be at most 500 KiB`,
          )
        const id = generateId()
        await update((tx) => {
          tx.create(table, { id, spec: { name, labels: labels(b.Labels, 'Labels'), data } } as never)
        })
        return { status: 201, json: { ID: id } }
      },
    ],
    [
      'POST',
      new RegExp(`^/${table}/([^/]+)/update$`),
      async ({ params, query, body }) => {
        await updateBlob(mgr().store, table, params[0]!, version(query), body, (tx, ref) =>
          lookup(tx, table, ref, noun),
        )
        return {}
      },
    ],
    [
      'DELETE',
      new RegExp(`^/${table}/([^/]+)$`),
      async ({ params }) => {
        await update((tx) => tx.delete(table, lookup(tx, table, params[0]!, noun).id))
        return { status: 204 }
      },
    ],
  ]
}
