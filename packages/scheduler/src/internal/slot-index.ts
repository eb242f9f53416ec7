// Per-service slot indexes, kept from the store's events, so that the orchestrator reconciles only the slots an
// event touched (issue #18: a pass over every task of a 50,000-slot service after each commit made a rolling
// update cost more CPU per task the larger the service). As swarm's replicated orchestrator: a task event
// concerns its own slot (the restart supervisor acts per task), a node event the slots of the node's tasks,
// and only a service's own change (spec, scale, update status), a restart of the orchestrator or a dropped
// watch calls for a full reconcile.
import type { Task } from '@swarmkit/store'

/** One service's tasks by slot, and what its next pass must look at. */
export class ServiceSlots {
  /** Slot number -> its tasks by ID (a global service's tasks all sit in slot 0: those passes are full). */
  readonly slots = new Map<number, Map<string, Task>>()
  /** Slots an event touched since the service's last pass. */
  dirty = new Set<number>()
  /** The next pass must reconcile every slot (start, resync, the service changed, a commit failed). */
  full = true
  /** Slots that hold a replica, as the last pass over each of them found (kept between passes). */
  readonly live = new Set<number>()
  /** No slot below this one is free (the lowest slot number a scale-up may take). */
  freeFrom = 1
  /** Slots waiting for a time (a restart delay) -> that time. */
  readonly timed = new Map<number, number>()

  /** A slot no longer holds a replica. */
  unlive(slot: number): void {
    if (this.live.delete(slot) && slot < this.freeFrom) this.freeFrom = slot
  }
}

/** Every service's {@link ServiceSlots}, kept in step with the orchestrator's task map. */
export class SlotIndex {
  readonly #services = new Map<string, ServiceSlots>()

  /** The service's slots (made empty, and marked for a full pass, on first use). */
  service(serviceId: string): ServiceSlots {
    let s = this.#services.get(serviceId)
    if (!s) this.#services.set(serviceId, (s = new ServiceSlots()))
    return s
  }

  get(serviceId: string): ServiceSlots | undefined {
    return this.#services.get(serviceId)
  }

  /** Every service's next pass looks at every slot, and no slot waits for a time (a leader's decisions are gone). */
  fullPasses(): void {
    for (const s of this.#services.values()) {
      s.full = true
      s.dirty = new Set()
      s.timed.clear()
    }
  }

  forget(serviceId: string): void {
    this.#services.delete(serviceId)
  }

  /** `t` was created or changed (`old`: as it was before); both slots are touched. */
  put(t: Task, old: Task | undefined): void {
    const s = this.service(t.serviceId)
    if (old && old.slot !== t.slot) {
      this.#remove(s, old)
      s.dirty.add(old.slot)
    }
    let m = s.slots.get(t.slot)
    if (!m) s.slots.set(t.slot, (m = new Map()))
    m.set(t.id, t)
  }

  drop(t: Task): void {
    const s = this.#services.get(t.serviceId)
    if (!s) return
    this.#remove(s, t)
    s.dirty.add(t.slot)
  }

  touch(serviceId: string, slot: number): void {
    this.service(serviceId).dirty.add(slot)
  }

  #remove(s: ServiceSlots, t: Task): void {
    const m = s.slots.get(t.slot)
    if (!m) return
    m.delete(t.id)
    if (m.size === 0) s.slots.delete(t.slot)
  }
}
