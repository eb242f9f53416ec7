// Engine API: `docker service ls/create/inspect/update/rollback/rm` (and `docker stack deploy`'s services).

import {
  nextJobStatus,
  rollbackService,
  serviceUpdate,
  statusFromTallies,
  validatePlacement,
} from '@swarmkit/scheduler'
import { type ClusterStore, generateId, type ReadTx, type ServiceSpec } from '@swarmkit/store'
import { allocateEndpoint } from '../allocator.js'
import { serviceSpecFromDocker, serviceToDocker } from '../docker-json.js'
import { ACCEPTED, parseFilters, serviceFilter } from '../filters.js'
import { type ServiceTallies, serviceTallies } from '../service-tallies.js'
import { storeError } from './error-map.js'
import { checkVersion, lookup, type Route, type RouteContext, version } from './route.js'

/** Task counts per service, kept at commit per manager store (service-tallies.ts), made on first use. */
const talliesOf = new WeakMap<ClusterStore, ServiceTallies>()
function tallies(store: ClusterStore): ServiceTallies {
  let t = talliesOf.get(store)
  if (!t) talliesOf.set(store, (t = serviceTallies(store, () => talliesOf.delete(store))))
  return t
}

function checkSpecRefs(spec: ServiceSpec): void {
  try {
    validatePlacement(spec.taskTemplate.placement)
  } catch (err) {
    throw storeError(err) ?? err
  }
}

/**
 * The spec with its networks named by ID, as moby's daemon resolves them: `docker stack deploy` names the
 * networks it has just created, where `service create --network` resolves them in the CLI.
 */
function withNetworkIds(tx: ReadTx, spec: ServiceSpec): ServiceSpec {
  const nets = spec.taskTemplate.networks
  if (!nets?.length) return spec
  return {
    ...spec,
    taskTemplate: {
      ...spec.taskTemplate,
      networks: nets.map((n) => ({ ...n, target: lookup(tx, 'networks', n.target, 'network').id })),
    },
  }
}

export function serviceRoutes({ mgr, view, update }: RouteContext): Route[] {
  return [
    [
      'GET',
      /^\/services$/,
      ({ query }) => {
        const match = serviceFilter(parseFilters(query.get('filters'), ACCEPTED.services))
        const status = query.get('status') === 'true' || query.get('status') === '1'
        // Counted from tallies kept at commit, not from every task of each service per request.
        const counts = status ? tallies(mgr().store) : undefined
        return {
          json: view((tx) =>
            tx
              .find('services')
              .filter(match)
              .map((s) => serviceToDocker(s, counts ? statusFromTallies(s, counts.of(s.id)) : undefined)),
          ),
        }
      },
    ],
    [
      'POST',
      /^\/services\/create$/,
      async ({ body }) => {
        const spec = serviceSpecFromDocker(body)
        checkSpecRefs(spec)
        const id = generateId()
        await update((tx) => {
          const resolved = withNetworkIds(tx, spec)
          const jobStatus = nextJobStatus(undefined, resolved, Date.now())
          tx.create('services', {
            id,
            spec: resolved,
            endpoint: allocateEndpoint(tx, id, resolved),
            ...(jobStatus ? { jobStatus } : {}),
          })
        })
        return { status: 201, json: { ID: id, Warnings: null } }
      },
    ],
    [
      'GET',
      /^\/services\/([^/]+)$/,
      ({ params, query }) => ({
        json: view((tx) =>
          serviceToDocker(lookup(tx, 'services', params[0]!, 'service'), undefined, {
            insertDefaults: query.get('insertDefaults') === 'true',
          }),
        ),
      }),
    ],
    [
      'POST',
      /^\/services\/([^/]+)\/update$/,
      async ({ params, query, body }) => {
        const v = version(query)
        if (query.get('rollback') === 'previous') {
          const s = view((tx) => lookup(tx, 'services', params[0]!, 'service'))
          checkVersion(s.meta.version, v)
          await rollbackService(mgr().store, s.id)
          return { json: { Warnings: null } }
        }
        const given = serviceSpecFromDocker(body)
        checkSpecRefs(given)
        await update((tx) => {
          const spec = withNetworkIds(tx, given)
          const cur = lookup(tx, 'services', params[0]!, 'service')
          checkVersion(cur.meta.version, v)
          // The one service-update rule (previous spec, spec version, job iteration), with the endpoint on top.
          const next = serviceUpdate(cur, spec, Date.now())
          next.endpoint = allocateEndpoint(tx, cur.id, spec)
          tx.update('services', next)
        })
        return { json: { Warnings: null } }
      },
    ],
    [
      'DELETE',
      /^\/services\/([^/]+)$/,
      async ({ params }) => {
        await update((tx) => {
          const s = lookup(tx, 'services', params[0]!, 'service')
          tx.delete('services', s.id)
        })
        return {}
      },
    ],
  ]
}
