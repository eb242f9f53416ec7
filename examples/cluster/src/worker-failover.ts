// A worker's connection to the managers' dispatchers, and its turn to another manager when its own is gone:
// one implementation for the daemon's worker (daemon.ts) and the simulated worker (simulated-worker.ts).
//
// Two signals say a manager is gone. The connection's: its session closed and the client could not make
// another (the dial failed: connection refused, a failed handshake, the transport's dial timeout), or none
// came back within `reconnectBoundMs`. A killed manager shows it within milliseconds; its nodes used to move
// only on their next failed heartbeat, up to a period (5 s) and the heartbeat's bound (the period) later,
// and the tasks the dead leader had assigned them waited that long. The heartbeat's: a heartbeat failed (a
// manager that holds the connection open but does not answer within the period). A manager that is only
// slow keeps the connection open and gives neither signal before its heartbeat bound.
//
// Like swarmkit's agent (a session ends on any error and the agent picks a manager again, the failed one
// observed down; a backoff only when sessions keep failing), with one difference: the first turn waits half
// to all of `firstDelayMs` (2 s), not a moment. The nodes of a dead manager, a third of all, each bring the
// survivors a handshake, a registration, a complete set of assignments and the reports they held back;
// arriving during the election and the new leader's first commits, they delayed them (bench/cluster-scale's
// leader kill at 1,000 nodes: the first progress came at 1.5 and 3.0 s with turns within 0.5 s of the
// kill, 0.55 and 0.76 s with the heartbeat's turns 5-10 s after it). Turns that did not end in a
// registration wait longer each time, doubling up to `maxDelayMs`. A turn goes to a manager chosen at
// random among those not seen gone lately, so that a dead manager's nodes spread over the survivors (they
// all went to the first other manager of the list). One turn at a time: a failed heartbeat while the last
// turn's registration is in flight does not turn again (the calls of a new session fail until it
// connects; switching on each of them made 223,000 switches for 5,000 nodes). A failed dial to the new
// manager does: it is a manager gone, not a session still starting.

import type { RpcClient } from '@swarmkit/transport'
import type { HeartbeatAnswer } from './dispatcher.js'
import { checkManagers } from './remote-dispatcher.js'

/** A manager as a heartbeat names it: join address and dispatcher address. */
export interface KnownManager {
  readonly addr: string
  readonly control: string
}

export interface WorkerFailoverOptions {
  /** The dispatcher address (`host:port`) to talk to first. */
  readonly controlAddr: string
  /** The managers known so far (a daemon's node file); heartbeat answers bring the list of the moment. */
  readonly managers?: readonly KnownManager[] | undefined
  /** A client of the dispatcher at `controlAddr` (the daemon's serves its own methods on it). */
  readonly connect: (controlAddr: string) => RpcClient
  /** Registers the node with the manager of the moment (`client`), after a turn. */
  readonly register: () => Promise<unknown>
  /** Whether the worker may turn now (a daemon in the middle of another swarm operation may not). */
  readonly canSwitch?: () => boolean
  /** Called after a turn, with the manager turned to (a daemon saves it). */
  readonly onSwitch?: (to: KnownManager) => void
  /** Called when a heartbeat answer brings another managers list (a daemon saves it). */
  readonly onManagers?: (managers: readonly KnownManager[]) => void
  /** How long a closed session may take to come back before its manager counts as gone. Default 2,000 ms. */
  readonly reconnectBoundMs?: number
  /** The first turn after a success waits half to all of this, each later one twice as long. Default 2,000 ms. */
  readonly firstDelayMs?: number
  /** The longest wait before a turn, after turns that kept failing. Default 8,000 ms. */
  readonly maxDelayMs?: number
  /** How long a manager seen gone is passed over when another can be chosen. Default 30,000 ms. */
  readonly downForMs?: number
  /** Random source in [0, 1) (default `Math.random`); seed it in tests. */
  readonly random?: () => number
  readonly log?: (line: string) => void
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  if (!Number.isFinite(value) || value < 0)
    throw new RangeError(`options.${name} must be a non-negative number`)
  return value
}

/** The dispatcher connection of a worker, which turns to another manager when its own is gone. */
export class WorkerFailover {
  #client: RpcClient
  #controlAddr: string
  #managers: readonly KnownManager[]
  readonly #options: WorkerFailoverOptions
  readonly #log: (line: string) => void
  readonly #random: () => number
  readonly #reconnectBoundMs: number
  readonly #firstDelayMs: number
  readonly #maxDelayMs: number
  readonly #downForMs: number
  /** Dispatcher addresses seen gone, with when. */
  readonly #down = new Map<string, number>()
  /** Turns since the last registration that succeeded (each waits longer). */
  #failedTurns = 0
  /** A turn is scheduled. */
  #turnTimer: ReturnType<typeof setTimeout> | undefined
  /** The session closed and has not come back yet. */
  #boundTimer: ReturnType<typeof setTimeout> | undefined
  /** The last turn's registration is in flight. */
  #registering = false
  #turns = 0
  #closed = false
  #unlisten: () => void = () => {}

  constructor(options: WorkerFailoverOptions) {
    if (typeof options?.controlAddr !== 'string' || options.controlAddr.length === 0)
      throw new TypeError('options.controlAddr must be an address')
    if (typeof options.connect !== 'function') throw new TypeError('options.connect must be a function')
    if (typeof options.register !== 'function') throw new TypeError('options.register must be a function')
    this.#options = options
    this.#log = options.log ?? (() => {})
    this.#random = options.random ?? Math.random
    this.#reconnectBoundMs = positive(options.reconnectBoundMs, 2000, 'reconnectBoundMs')
    this.#firstDelayMs = positive(options.firstDelayMs, 2000, 'firstDelayMs')
    this.#maxDelayMs = positive(options.maxDelayMs, 8000, 'maxDelayMs')
    this.#downForMs = positive(options.downForMs, 30_000, 'downForMs')
    this.#managers = options.managers ?? []
    this.#controlAddr = options.controlAddr
    this.#client = options.connect(options.controlAddr)
    this.#watch(this.#client)
  }

  /** The client of the manager of the moment. */
  get client(): RpcClient {
    return this.#client
  }

  /** The dispatcher address of the manager of the moment. */
  get controlAddr(): string {
    return this.#controlAddr
  }

  /** The managers the last heartbeat answer named. */
  get managers(): readonly KnownManager[] {
    return this.#managers
  }

  /** Turns to another manager so far. */
  get turns(): number {
    return this.#turns
  }

  /**
   * What a heartbeat brought: an answer (its managers list is kept), or nothing: the manager did not answer
   * within the heartbeat's bound, and the worker turns to another.
   */
  heartbeat(answer: HeartbeatAnswer | undefined): void {
    if (this.#closed) return
    if (answer) {
      const managers = checkManagers(answer.managers)
      if (managers && managers.length > 0 && !sameManagers(managers, this.#managers)) {
        this.#managers = managers
        this.#options.onManagers?.(managers)
      }
      return
    }
    // Not while the last turn registers: the new session's first calls may fail before it connects.
    if (this.#registering) return
    this.#gone('does not answer')
  }

  /** Stops following the connection and closes the client of the moment. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#turnTimer)
    clearTimeout(this.#boundTimer)
    this.#unlisten()
    await this.#client.close()
  }

  /** The connection's signals: a closed session, and the dials that fail after it. */
  #watch(client: RpcClient): void {
    const onClose = () => {
      if (this.#closed || this.#boundTimer !== undefined) return
      this.#boundTimer = setTimeout(() => {
        this.#boundTimer = undefined
        if (!client.connected) this.#gone(`gave no connection within ${this.#reconnectBoundMs} ms`)
      }, this.#reconnectBoundMs)
      this.#boundTimer.unref?.()
    }
    const onOpen = () => {
      clearTimeout(this.#boundTimer)
      this.#boundTimer = undefined
    }
    const onDialFail = (error: unknown) => {
      this.#gone(`refused a connection (${(error as Error)?.message ?? error})`)
    }
    client.on('session:close', onClose)
    client.on('session:open', onOpen)
    client.on('dial:fail', onDialFail)
    this.#unlisten = () => {
      client.off('session:close', onClose)
      client.off('session:open', onOpen)
      client.off('dial:fail', onDialFail)
      clearTimeout(this.#boundTimer)
      this.#boundTimer = undefined
    }
  }

  /** The manager of the moment is gone: a turn to another, after the backoff, unless one is coming. */
  #gone(why: string): void {
    if (this.#closed || this.#turnTimer !== undefined) return
    this.#down.set(this.#controlAddr, Date.now())
    // Half to all of firstDelayMs for the first turn after a success, doubling for each turn after it.
    const base = Math.min(this.#maxDelayMs, this.#firstDelayMs * 2 ** this.#failedTurns)
    const delay = base * (0.5 + 0.5 * this.#random())
    this.#turnTimer = setTimeout(() => {
      this.#turnTimer = undefined
      this.#turn(why)
    }, delay)
    this.#turnTimer.unref?.()
  }

  #turn(why: string): void {
    if (this.#closed || this.#options.canSwitch?.() === false) return
    const to = this.#choose()
    if (!to) return
    this.#log(`manager ${this.#controlAddr} ${why}: switching to ${to.control}`)
    this.#failedTurns++
    this.#turns++
    const old = this.#client
    this.#unlisten()
    this.#controlAddr = to.control
    this.#client = this.#options.connect(to.control)
    this.#watch(this.#client)
    void old.close()
    this.#options.onSwitch?.(to)
    void this.#registerWith(this.#client, to)
  }

  /**
   * Registers with the manager turned to, again until it worked (during an election a registration fails:
   * the proposal is fenced off, or there is no leader yet) while that manager is still the one of the moment.
   */
  async #registerWith(client: RpcClient, to: KnownManager): Promise<void> {
    for (let delay = 250; ; delay = Math.min(2 * delay, 2000)) {
      if (this.#closed || client !== this.#client) return
      this.#registering = true
      try {
        await this.#options.register()
        if (client !== this.#client) return
        this.#failedTurns = 0
        this.#down.delete(to.control)
        return
      } catch (err) {
        if (this.#closed || client !== this.#client) return
        this.#log(`registration with ${to.control} failed: ${(err as Error).message}; retrying`)
      } finally {
        if (client === this.#client) this.#registering = false
      }
      await new Promise<void>((resolve) => setTimeout(resolve, delay).unref?.())
    }
  }

  /** Another manager, at random among those not seen gone lately (else among the others). */
  #choose(): KnownManager | undefined {
    const others = this.#managers.filter((m) => m.control !== this.#controlAddr)
    if (others.length === 0) return undefined
    const now = Date.now()
    const up = others.filter((m) => {
      const at = this.#down.get(m.control)
      return at === undefined || now - at >= this.#downForMs
    })
    const from = up.length > 0 ? up : others
    return from[Math.min(from.length - 1, Math.floor(this.#random() * from.length))]
  }
}

function sameManagers(a: readonly KnownManager[], b: readonly KnownManager[]): boolean {
  return a.length === b.length && a.every((m, i) => m.addr === b[i]!.addr && m.control === b[i]!.control)
}
