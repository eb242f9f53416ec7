// Engine API: `docker network ls/inspect/create/rm` for overlay networks.

import { createNetwork } from '../allocator.js'
import { labels, networkToDocker } from '../docker-json.js'
import { ApiError } from '../errors.js'
import { ACCEPTED, networkFilter, parseFilters } from '../filters.js'
import { attachmentUsing } from '../network-users.js'
import { lookup, type Route, type RouteContext } from './route.js'

export function networkRoutes({ view, update }: RouteContext): Route[] {
  return [
    [
      'GET',
      /^\/networks$/,
      ({ query }) => {
        const f = parseFilters(query.get('filters'), ACCEPTED.networks)
        return { json: view((tx) => tx.find('networks').filter(networkFilter(tx, f)).map(networkToDocker)) }
      },
    ],
    [
      'GET',
      /^\/networks\/([^/]+)$/,
      ({ params }) => ({
        json: view((tx) => networkToDocker(lookup(tx, 'networks', params[0]!, 'network'))),
      }),
    ],
    [
      'POST',
      /^\/networks\/create$/,
      async ({ body }) => {
        const b = (body ?? {}) as Record<string, unknown>
        const name = typeof b.Name === 'string' ? b.Name : ''
        if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(name))
          throw new ApiError(400, `invalid network name "${name}"`)
        const driver = typeof b.Driver === 'string' && b.Driver ? b.Driver : 'overlay'
        if (driver !== 'overlay')
          throw new ApiError(400, `only overlay networks are supported by this cluster, not "${driver}"`)
        if (b.Ingress === true) throw new ApiError(403, 'an ingress network already exists')
        const options = driverOptions(b.Options)
        const id = await update((tx) =>
          createNetwork(tx, {
            name,
            labels: labels(b.Labels, 'Labels'),
            driverConfig: { name: 'overlay', ...(options ? { options } : {}) },
            attachable: b.Attachable === true,
            internal: b.Internal === true,
          }),
        )
        return { status: 201, json: { Id: id, Warning: '' } }
      },
    ],
    [
      'DELETE',
      /^\/networks\/([^/]+)$/,
      async ({ params }) => {
        await update((tx) => {
          const n = lookup(tx, 'networks', params[0]!, 'network')
          const users = tx
            .find('services')
            .filter((s) => (s.endpoint?.virtualIPs ?? []).some((v) => v.networkId === n.id))
          if (users.length > 0)
            throw new ApiError(
              403,
              `rpc error: code = FailedPrecondition desc = network ${n.id} is in use by service ${users[0]!.id}`,
            )
          const attached = attachmentUsing(tx, n.id)
          if (attached) throw new ApiError(403, attached)
          tx.delete('networks', n.id)
        })
        return { status: 204 }
      },
    ],
  ]
}

/** `Options` of a network create (`--opt KEY=VALUE`, e.g. `encrypted`): string values only. */
function driverOptions(raw: unknown): Record<string, string> | undefined {
  if (raw === undefined || raw === null) return undefined
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new ApiError(400, 'invalid network options: expected an object of strings')
  const entries = Object.entries(raw as Record<string, unknown>)
  if (
    entries.length > 64 ||
    !entries.every(([k, v]) => typeof v === 'string' && k.length <= 256 && v.length <= 4096)
  )
    throw new ApiError(400, 'invalid network options: expected at most 64 string values')
  return entries.length > 0 ? (Object.fromEntries(entries) as Record<string, string>) : undefined
}
