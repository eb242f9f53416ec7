// The memory transport's public face: the network, its option and stats types, and the memoryTransport()
// factory with a process-wide default network. The parts live in ./memory/: the network and its delivery
// queues, fault injection, endpoints and listeners, and connections.

import { MemoryNetwork, type MemoryTransportOptions } from './memory/network.js'
import type { Transport } from './types.js'

export type { LinkFaults } from './memory/faults.js'
export {
  MemoryNetwork,
  type MemoryNetworkOptions,
  type MemoryNodeStats,
  type MemoryTransportOptions,
} from './memory/network.js'

let defaultNetwork: MemoryNetwork | undefined
let anonymous = 0

/** Options of {@link memoryTransport}. */
export interface MemoryTransportFactoryOptions extends MemoryTransportOptions {
  /** The network to join (default: one shared by the whole process, with real time and seed 0). */
  readonly network?: MemoryNetwork | undefined
  /** The node name (default: a fresh `memory-N`). */
  readonly name?: string | undefined
}

/** A memory transport endpoint: `network.transport(name)` with defaults for both. */
export function memoryTransport(options?: MemoryTransportFactoryOptions): Transport {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError('options must be an object')
  }
  if (options?.network !== undefined && !(options.network instanceof MemoryNetwork)) {
    throw new TypeError('options.network must be a MemoryNetwork')
  }
  const network = options?.network ?? (defaultNetwork ??= new MemoryNetwork())
  return network.transport(options?.name ?? `memory-${++anonymous}`, { identity: options?.identity })
}
