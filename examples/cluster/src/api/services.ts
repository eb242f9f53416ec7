// Engine API: `docker service ls/create/inspect/update/rollback/rm` (and `docker stack deploy`'s services).

import {
  serviceStatus as jobAwareServiceStatus,
  nextJobStatus,
  rollbackService,
  serviceUpdate,
  validatePlacement,
} from '@swarmkit/scheduler'
import { generateId, type ReadTx, type Service, type ServiceSpec } from '@swarmkit/store'
import { allocateEndpoint } from '../allocator.js'
import { serviceSpecFromDocker, serviceToDocker } from '../docker-json.js'
import { ACCEPTED, parseFilters, serviceFilter } from '../filters.js'
import { storeError } from './error-map.js'
import { checkVersion, lookup, type Route, type RouteContext, version } from './route.js'

function serviceStatus(tx: ReadTx, s: Service) {
  return jobAwareServiceStatus(s, tx.find('tasks', { serviceId: s.id }))
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
        return {
          json: view((tx) =>
            tx
              .find('services')
              .filter(match)
              .map((s) => serviceToDocker(s, status ? serviceStatus(tx, s) : undefined)),
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
