// `docker swarm init`: what the first manager writes once it leads: the cluster object (spec defaults, the
// root CA and join tokens), its own node object as the leader, and the ingress network.

import * as pki from '@swarmkit/pki'
import type { Tx } from '@swarmkit/store'
import { createNetwork } from '../allocator.js'
import { RAFT_ADDR_LABEL } from '../labels.js'
import { withFirstNetworkKeys } from '../network-keys.js'
import { nodeTlsInfo } from '../tls-info.js'
import { DEFAULT_CERT_EXPIRY_NS } from './ca.js'
import type { ManagerOptions } from './options.js'

/** Creates the cluster in `tx` from `o.bootstrap`, with this manager (raft member `raftId`) as its leader. */
export function createCluster(tx: Tx, o: ManagerOptions, raftId: string): void {
  const b = o.bootstrap
  if (!b) throw new TypeError('options.bootstrap: expected the root CA, join tokens and node info')
  const exported = pki.exportRootCA(b.ca)
  tx.create(
    'clusters',
    withFirstNetworkKeys({
      id: o.clusterId,
      spec: {
        name: 'default',
        labels: {},
        orchestration: { taskHistoryRetentionLimit: 5 },
        raft: {
          snapshotInterval: o.snapshotInterval ?? 10000,
          keepOldSnapshots: 0,
          logEntriesForSlowFollowers: 500,
          electionTick: 10,
          heartbeatTick: 1,
        },
        dispatcher: { heartbeatPeriod: (o.heartbeatPeriodMs ?? 5000) * 1e6 },
        caConfig: { nodeCertExpiry: DEFAULT_CERT_EXPIRY_NS },
        taskDefaults: {},
        encryptionConfig: { autoLockManagers: false },
      },
      rootCA: {
        caKey: exported.key,
        caCert: exported.certificate,
        caCertHash: Buffer.from(pki.caDigest(b.ca.pem)).toString('hex'),
        joinTokens: { worker: b.joinTokens.worker, manager: b.joinTokens.manager },
      },
      unlockKeys: [],
      defaultAddressPool: ['10.0.0.0/8'],
      subnetSize: 24,
      vxlanUdpPort: 4789,
    }),
  )
  tx.create('nodes', {
    id: o.nodeId,
    spec: { labels: {}, role: 'manager', availability: 'active' },
    role: 'manager',
    description: {
      hostname: b.info.hostname,
      platform: b.info.platform,
      resources: b.info.resources,
      engine: {
        engineVersion: b.info.engineVersion,
        labels: { [RAFT_ADDR_LABEL]: o.raftAddr },
        plugins: [],
      },
      tlsInfo: nodeTlsInfo(o.credentials.certificate, o.credentials.roots),
    },
    status: { state: 'ready', addr: o.advertiseHost },
    managerStatus: { raftId: raftId, addr: '', leader: true, reachability: 'reachable' },
  })
  createNetwork(tx, { name: 'ingress', labels: {}, driverConfig: { name: 'overlay' }, ingress: true })
}
