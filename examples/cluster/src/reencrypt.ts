// Swarm rotates a manager's data key (DEK) when autolock is turned on and on `docker swarm unlock-key
// --rotate`, and re-encrypts what was written under the old one. Here: the raft log and snapshot are
// written again under the new key, then the old keys leave the key file, so that a copy of an earlier key
// file (which held the DEK in the clear before autolock) opens nothing on disk (issue 13).

import type { FileLogStorage } from '@swarmkit/raft'
import type { KeyManager } from '@swarmkit/store'

/**
 * Re-encrypts everything `storage` holds under `keys`' current data key and drops the earlier keys. Does
 * nothing when the key file holds no earlier key. Safe to run again after a crash: until the earlier keys
 * are dropped, what was not rewritten yet still opens.
 */
export async function reencryptAtRest(keys: KeyManager, storage: FileLogStorage): Promise<boolean> {
  if (!keys.hasPreviousKeys) return false
  await storage.reseal()
  // Nothing on disk is under an earlier key any more: a record that still were would be refused as corrupt.
  await keys.retirePreviousKeys(0)
  return true
}
