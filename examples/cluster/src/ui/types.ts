// What the browser view receives: compact projections of the store's objects, shared by the server that
// makes them (src/ui-feed.ts) and the page that draws them (src/ui/page.ts).

export interface UiNode {
  readonly id: string
  readonly name: string
  readonly role: 'manager' | 'worker'
  readonly availability: string
  /** ready, down, unknown, disconnected */
  readonly state: string
  readonly addr: string
  readonly leader: boolean
  /** A manager's raft reachability (reachable, unreachable, unknown); empty for a worker. */
  readonly reachability: string
  /** Where this manager serves the page (`http://host:port`), once it has recorded it. */
  readonly ui: string
  /** The node object's version, for `POST /nodes/{id}/update?version=`. */
  readonly version: number
}

export interface UiTask {
  readonly id: string
  readonly serviceId: string
  readonly service: string
  readonly slot: number
  readonly nodeId: string
  readonly image: string
  readonly state: string
  readonly desired: string
  readonly err: string
}

export interface UiService {
  readonly id: string
  readonly name: string
  /** replicated, global, replicated-job, global-job */
  readonly mode: string
  /** Desired replicas (replicated services); -1 for the others. */
  readonly replicas: number
  readonly image: string
  /** `published:target/protocol` per published port. */
  readonly ports: readonly string[]
  /** The update or rollback in progress (updating, rollback_started, …), or the last one's end state. */
  readonly update: string
  readonly updateMessage: string
  readonly hasPrevious: boolean
  readonly version: number
}

export interface UiNetwork {
  readonly id: string
  readonly name: string
  readonly driver: string
  readonly subnets: readonly string[]
  readonly ingress: boolean
}

/** One manager's consensus, as it sees it. */
export interface UiRaft {
  readonly nodeId: string
  readonly name: string
  readonly raftId: string
  readonly term: number
  /** The leader's node ID (empty while there is none). */
  readonly leader: string
  readonly commit: number
  readonly applied: number
}

export interface UiSnapshot {
  /** The node serving the stream. */
  readonly self: string
  readonly clusterId: string
  readonly nodes: readonly UiNode[]
  readonly services: readonly UiService[]
  readonly tasks: readonly UiTask[]
  readonly networks: readonly UiNetwork[]
}

/** Changes since the last message: objects created or updated, and IDs removed. */
export interface UiPatch {
  readonly nodes?: readonly UiNode[]
  readonly services?: readonly UiService[]
  readonly tasks?: readonly UiTask[]
  readonly networks?: readonly UiNetwork[]
  readonly removed?: {
    readonly nodes?: readonly string[]
    readonly services?: readonly string[]
    readonly tasks?: readonly string[]
    readonly networks?: readonly string[]
  }
}

/** Engine label in which a manager records where it serves the page. */
export const UI_ADDR_LABEL = 'com.swarmkit.ui-addr'
