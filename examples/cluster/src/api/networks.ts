// Engine API: `docker network ls/inspect/create/rm` for overlay networks.

import { createNetwork } from '../allocator.js'
import { labels, networkToDocker } from '../docker-json.js'
import { ApiError } from '../errors.js'
import { ACCEPTED, networkFilter, parseFilters } from '../filters.js'
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
        const id = await update((tx) =>
          createNetwork(tx, {
            name,
            labels: labels(b.Labels, 'Labels'),
            driverConfig: { name: 'overlay' },
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
          tx.delete('networks', n.id)
        })
        return { status: 204 }
      },
    ],
  ]
}
