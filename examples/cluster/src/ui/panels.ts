/// <reference lib="dom" />
// The tables beside the board: services (desired and running, mode, ports, update state, actions),
// networks with their subnets, and raft per manager. Rows are keyed by ID like the board's cards.

import { el, hueOf, setText } from './dom.js'
import type { UiNetwork, UiRaft, UiService } from './types.js'

export interface ServiceActions {
  scale(service: UiService, replicas: number): void
  rollback(service: UiService): void
}

function table(caption: string, heads: string[]): { root: HTMLTableElement; body: HTMLTableSectionElement } {
  const body = el('tbody')
  const root = el(
    'table',
    {},
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', { scope: 'col' }, h)))),
    body,
  )
  return { root, body }
}

interface ServiceRow {
  readonly tr: HTMLTableRowElement
  readonly cells: HTMLTableCellElement[]
  readonly input: HTMLInputElement
  readonly scale: HTMLFormElement
  readonly rollback: HTMLButtonElement
  service: UiService
}

export class ServicesPanel {
  readonly #t = table('Services', [
    'service',
    'mode',
    'running / desired',
    'image',
    'ports',
    'update',
    'actions',
  ])
  readonly root = this.#t.root
  readonly #rows = new Map<string, ServiceRow>()
  readonly #running = new Map<string, number>()
  readonly #dirty = new Set<string>()
  readonly #actions: ServiceActions

  constructor(actions: ServiceActions) {
    this.#actions = actions
    this.root.classList.add('services')
  }

  clear(): void {
    this.#rows.clear()
    this.#running.clear()
    this.#dirty.clear()
    this.#t.body.replaceChildren()
  }

  /** A task of `serviceId` started (+1) or stopped (-1) running. */
  running(serviceId: string, delta: number): void {
    this.#running.set(serviceId, (this.#running.get(serviceId) ?? 0) + delta)
    this.#dirty.add(serviceId)
  }

  /** Writes the running counts changed since the last call (once per message, not once per task). */
  flush(): void {
    for (const id of this.#dirty) {
      const row = this.#rows.get(id)
      if (row) this.#counts(row)
    }
    this.#dirty.clear()
  }

  #counts(row: ServiceRow): void {
    const running = this.#running.get(row.service.id) ?? 0
    setText(row.cells[2]!, row.service.replicas >= 0 ? `${running} / ${row.service.replicas}` : `${running}`)
  }

  upsert(s: UiService): void {
    let row = this.#rows.get(s.id)
    if (!row) {
      const cells = Array.from({ length: 7 }, () => el('td'))
      const input = el('input', {
        type: 'number',
        min: '0',
        step: '1',
        required: '',
        'aria-label': `replicas of ${s.name}`,
      })
      const scale = el('form', { class: 'scale' }, input, el('button', { type: 'submit' }, 'Scale'))
      const rollback = el('button', { type: 'button', 'aria-label': `roll back ${s.name}` }, 'Roll back')
      cells[6]!.append(scale, rollback)
      const swatch = el('span', { class: 'swatch', 'aria-hidden': 'true' })
      swatch.style.setProperty('--h', String(hueOf(s.id)))
      const name = el('span', { class: 'service-name' })
      cells[0]!.append(swatch, name)
      const tr = el('tr', { 'data-service': s.id }, ...cells)
      row = { tr, cells, input, scale, rollback, service: s }
      const r = row
      scale.addEventListener('submit', (e) => {
        e.preventDefault()
        const n = Number(r.input.value)
        if (Number.isInteger(n) && n >= 0) this.#actions.scale(r.service, n)
      })
      rollback.addEventListener('click', () => this.#actions.rollback(r.service))
      this.#insert(tr, s.name)
      this.#rows.set(s.id, row)
      input.value = String(Math.max(s.replicas, 0))
    } else if (row.service.replicas !== s.replicas && document.activeElement !== row.input) {
      row.input.value = String(Math.max(s.replicas, 0))
    }
    row.service = s
    setText(row.cells[0]!.lastElementChild!, s.name)
    setText(row.cells[1]!, s.mode)
    setText(row.cells[3]!, s.image)
    setText(row.cells[4]!, s.ports.join(', '))
    setText(row.cells[5]!, s.update ? s.update.replace('_', ' ') : '')
    row.cells[5]!.title = s.updateMessage
    row.tr.dataset.update = s.update
    row.scale.hidden = s.mode !== 'replicated'
    row.rollback.disabled = !s.hasPrevious
    this.#counts(row)
  }

  #insert(tr: HTMLTableRowElement, name: string): void {
    for (const other of this.#t.body.rows) {
      if ((other.cells[0]?.textContent ?? '') > name) return void this.#t.body.insertBefore(tr, other)
    }
    this.#t.body.append(tr)
  }

  remove(id: string): void {
    this.#rows.get(id)?.tr.remove()
    this.#rows.delete(id)
  }
}

export class NetworksPanel {
  readonly #t = table('Networks', ['network', 'driver', 'subnets'])
  readonly root = this.#t.root
  readonly #rows = new Map<string, HTMLTableRowElement>()

  clear(): void {
    this.#rows.clear()
    this.#t.body.replaceChildren()
  }

  upsert(n: UiNetwork): void {
    let tr = this.#rows.get(n.id)
    if (!tr) {
      tr = el('tr', { 'data-network': n.id }, el('td'), el('td'), el('td'))
      this.#rows.set(n.id, tr)
      this.#t.body.append(tr)
    }
    setText(tr.cells[0]!, n.ingress ? `${n.name} (ingress)` : n.name)
    setText(tr.cells[1]!, n.driver)
    setText(tr.cells[2]!, n.subnets.join(', '))
  }

  remove(id: string): void {
    this.#rows.get(id)?.remove()
    this.#rows.delete(id)
  }
}

export class RaftPanel {
  readonly #t = table('Raft', ['manager', 'term', 'leader', 'commit', 'applied'])
  readonly root = this.#t.root
  readonly #rows = new Map<string, HTMLTableRowElement>()

  /** One row per manager: its answer, or that it did not answer. */
  show(
    managers: { id: string; name: string }[],
    answers: Map<string, UiRaft | undefined>,
    names: Map<string, string>,
  ): void {
    const keep = new Set(managers.map((m) => m.id))
    for (const [id, tr] of this.#rows)
      if (!keep.has(id)) {
        tr.remove()
        this.#rows.delete(id)
      }
    for (const m of managers) {
      let tr = this.#rows.get(m.id)
      if (!tr) {
        tr = el('tr', { 'data-manager': m.id }, ...Array.from({ length: 5 }, () => el('td')))
        this.#rows.set(m.id, tr)
        this.#t.body.append(tr)
      }
      const r = answers.get(m.id)
      setText(tr.cells[0]!, m.name)
      tr.dataset.answered = r ? 'true' : 'false'
      setText(tr.cells[1]!, r ? String(r.term) : 'no answer')
      setText(tr.cells[2]!, r ? (names.get(r.leader) ?? (r.leader ? r.leader.slice(0, 12) : 'none')) : '')
      setText(tr.cells[3]!, r ? String(r.commit) : '')
      setText(tr.cells[4]!, r ? String(r.applied) : '')
    }
  }
}
