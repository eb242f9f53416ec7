// Engine API: `docker swarm init/join/leave/update/unlock/unlock-key` and `docker swarm ca`.

import * as pki from '@swarmkit/pki'
import type { Cluster } from '@swarmkit/store'
import { rfc3339, toDocker } from '../docker-json.js'
import { ApiError, MESSAGES } from '../errors.js'
import { MIN_CERT_EXPIRY_NS, startRootRotation } from '../manager/ca.js'
import type { Manager } from '../manager.js'
import { checkSwarmSettings, withSwarmSettings } from '../swarm-settings.js'
import { clusterTlsInfo } from '../tls-info.js'
import { type Route, type RouteContext, version } from './route.js'

/** The cluster as `docker info` (Swarm.Cluster) and `docker swarm inspect` show it, without the join tokens. */
export function clusterJson(c: Cluster) {
  return {
    ID: c.id,
    Version: { Index: c.meta.version },
    CreatedAt: rfc3339(c.meta.createdAt),
    UpdatedAt: rfc3339(c.meta.updatedAt),
    Spec: toDocker(c.spec),
    TLSInfo: toDocker(clusterTlsInfo(c)),
    RootRotationInProgress: !!c.rootCA.rootRotation,
    DefaultAddrPool: c.defaultAddressPool,
    SubnetSize: c.subnetSize,
    DataPathPort: c.vxlanUdpPort,
  }
}

function swarmJson(m: Manager) {
  const c = m.cluster()
  if (!c) throw new ApiError(503, MESSAGES.notInSwarm)
  return {
    ...clusterJson(c),
    JoinTokens: { Worker: c.rootCA.joinTokens.worker, Manager: c.rootCA.joinTokens.manager },
  }
}

export function swarmRoutes({ d, mgr }: RouteContext): Route[] {
  return [
    [
      'POST',
      /^\/swarm\/init$/,
      async ({ body }) => ({ json: await d.init((body ?? {}) as Record<string, unknown>) }),
    ],
    [
      'POST',
      /^\/swarm\/join$/,
      async ({ body }) => {
        await d.join((body ?? {}) as Record<string, unknown>)
        return {}
      },
    ],
    [
      'POST',
      /^\/swarm\/leave$/,
      async ({ query }) => {
        await d.leave(query.get('force') === '1' || query.get('force') === 'true')
        return {}
      },
    ],
    ['GET', /^\/swarm$/, () => ({ json: swarmJson(mgr()) })],
    [
      'POST',
      /^\/swarm\/update$/,
      async ({ query, body }) => {
        const v = version(query)
        const spec = (body ?? {}) as {
          EncryptionConfig?: { AutoLockManagers?: unknown }
          CAConfig?: { NodeCertExpiry?: unknown; ForceRotate?: unknown; SigningCACert?: unknown }
        }
        const autolock = spec.EncryptionConfig?.AutoLockManagers
        const expiry = spec.CAConfig?.NodeCertExpiry
        const forceRotate = spec.CAConfig?.ForceRotate
        if (
          forceRotate !== undefined &&
          (typeof forceRotate !== 'number' || !Number.isSafeInteger(forceRotate) || forceRotate < 0)
        )
          throw new ApiError(400, 'CAConfig.ForceRotate: expected a non-negative integer')
        if (typeof spec.CAConfig?.SigningCACert === 'string' && spec.CAConfig.SigningCACert !== '')
          throw new ApiError(
            400,
            'rotating to a given CA certificate (--ca-cert, --external-ca) is not supported; use docker swarm ca --rotate',
          )
        if (expiry !== undefined && (typeof expiry !== 'number' || !Number.isSafeInteger(expiry)))
          throw new ApiError(400, 'CAConfig.NodeCertExpiry: expected integer nanoseconds')
        if (typeof expiry === 'number' && expiry < MIN_CERT_EXPIRY_NS)
          throw new ApiError(
            400,
            'rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s',
          )
        checkSwarmSettings(body)
        await mgr().updateCluster(
          v,
          typeof autolock === 'boolean' ? autolock : undefined,
          query.get('rotateManagerUnlockKey') === 'true',
          (c) => {
            const tokens = { ...c.rootCA.joinTokens }
            if (query.get('rotateWorkerToken') === 'true') tokens.worker = pki.rotateJoinToken(tokens.worker)
            if (query.get('rotateManagerToken') === 'true')
              tokens.manager = pki.rotateJoinToken(tokens.manager)
            let caConfig =
              typeof expiry === 'number' && expiry > 0
                ? { ...c.spec.caConfig, nodeCertExpiry: expiry }
                : c.spec.caConfig
            let rootCA = { ...c.rootCA, joinTokens: tokens }
            // `docker swarm ca --rotate` bumps ForceRotate: a new root, cross-signed by the old one.
            if (typeof forceRotate === 'number' && forceRotate > (c.spec.caConfig.forceRotate ?? 0)) {
              caConfig = { ...caConfig, forceRotate }
              rootCA = { ...rootCA, rootRotation: startRootRotation(c), lastForcedRotation: forceRotate }
            }
            return { ...c, spec: withSwarmSettings({ ...c.spec, caConfig }, body), rootCA }
          },
        )
        return {}
      },
    ],
    [
      'POST',
      /^\/swarm\/unlock$/,
      async ({ body }) => {
        await d.unlock((body as { UnlockKey?: unknown } | undefined)?.UnlockKey)
        return {}
      },
    ],
    [
      'GET',
      /^\/swarm\/unlockkey$/,
      () => {
        return { json: { UnlockKey: mgr().unlockKey() ?? '' } }
      },
    ],
  ]
}
