/// <reference lib="dom" />
// Nodes as columns, tasks as cards: keyed by ID, so that a change touches only its own card (a text, an
// attribute, a move to another column) and the page never redraws the whole board.

import { el, hueOf, imageTag, setAttr, setText } from './dom.js'
import type { UiNode, UiTask } from './types.js'

interface Column {
  readonly root: HTMLElement
  readonly name: HTMLElement
  readonly badges: HTMLElement
  readonly count: HTMLElement
  readonly cards: HTMLElement
  readonly toggle: HTMLButtonElement
  node: UiNode | undefined
  tasks: number
  key: string
}

interface Card {
  readonly root: HTMLElement
  readonly title: HTMLElement
  readonly tag: HTMLElement
  readonly state: HTMLElement
  readonly err: HTMLElement
  task: UiTask
}

const UNASSIGNED = ''

export interface BoardActions {
  setAvailability(node: UiNode, availability: 'active' | 'drain'): void
}

export class Board {
  readonly root = el('div', { class: 'board', role: 'list', 'aria-label': 'nodes' })
  readonly #columns = new Map<string, Column>()
  /** The columns in display order. */
  readonly #order: Column[] = []
  readonly #dirty = new Set<Column>()
  readonly #cards = new Map<string, Card>()
  readonly #actions: BoardActions

  constructor(actions: BoardActions) {
    this.#actions = actions
  }

  get taskCount(): number {
    return this.#cards.size
  }

  clear(): void {
    this.#columns.clear()
    this.#order.length = 0
    this.#dirty.clear()
    this.#cards.clear()
    this.root.replaceChildren()
  }

  #column(nodeId: string): Column {
    let c = this.#columns.get(nodeId)
    if (c) return c
    const name = el(
      'h2',
      { class: 'node-name' },
      nodeId === UNASSIGNED ? 'not yet assigned' : nodeId.slice(0, 12),
    )
    const badges = el('div', { class: 'badges' })
    const count = el('span', { class: 'count' })
    const toggle = el('button', { type: 'button', class: 'availability', hidden: '' })
    const cards = el('ul', { class: 'cards', 'aria-label': 'tasks' })
    const root = el(
      'section',
      { class: 'column', role: 'listitem', 'data-node': nodeId, tabindex: '-1' },
      el(
        'header',
        { class: 'column-head' },
        name,
        badges,
        el('div', { class: 'column-foot' }, count, toggle),
      ),
      cards,
    )
    c = { root, name, badges, count, cards, toggle, node: undefined, tasks: 0, key: '' }
    const col = c
    toggle.addEventListener('click', () => {
      if (col.node)
        this.#actions.setAvailability(col.node, col.node.availability === 'active' ? 'drain' : 'active')
    })
    this.#columns.set(nodeId, c)
    this.#place(c)
    return c
  }

  /** Managers first, then workers, each by name; the unassigned column last (binary search on `#order`). */
  #place(c: Column): void {
    const at = this.#order.indexOf(c)
    if (at >= 0) this.#order.splice(at, 1)
    c.key = sortKey(c)
    let lo = 0
    let hi = this.#order.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.#order[mid]!.key <= c.key) lo = mid + 1
      else hi = mid
    }
    this.#order.splice(lo, 0, c)
    const before = this.#order[lo + 1]?.root ?? null
    if (c.root.nextElementSibling !== before || c.root.parentElement !== this.root)
      this.root.insertBefore(c.root, before)
  }

  #drop(c: Column): void {
    this.#dirty.delete(c)
    c.root.remove()
    this.#columns.delete(c.root.dataset.node ?? '')
    const at = this.#order.indexOf(c)
    if (at >= 0) this.#order.splice(at, 1)
  }

  upsertNode(n: UiNode): void {
    const c = this.#column(n.id)
    const old = c.node
    c.node = n
    setText(c.name, n.name)
    c.name.title = `${n.id} ${n.addr}`
    if (
      !old ||
      old.role !== n.role ||
      old.leader !== n.leader ||
      old.availability !== n.availability ||
      old.state !== n.state ||
      old.reachability !== n.reachability
    ) {
      const badge = (cls: string, text: string, label = text) =>
        el('span', { class: `badge ${cls}`, title: label }, text)
      const badges: HTMLElement[] = [badge(`role-${n.role}`, n.role)]
      if (n.leader) badges.push(badge('leader', '★ leader', 'raft leader'))
      badges.push(badge(`state-${n.state}`, n.state, 'status'))
      badges.push(badge(`avail-${n.availability}`, n.availability, 'availability'))
      if (n.reachability)
        badges.push(badge(`reach-${n.reachability}`, n.reachability, 'manager reachability'))
      c.badges.replaceChildren(...badges)
      setAttr(c.root, 'data-state', n.state)
      setAttr(c.root, 'data-leader', n.leader ? 'true' : null)
      c.toggle.hidden = false
      setText(c.toggle, n.availability === 'active' ? 'Drain' : 'Activate')
      c.toggle.setAttribute(
        'aria-label',
        `${n.availability === 'active' ? 'drain' : 'activate'} node ${n.name}`,
      )
    }
    if (!old || old.name !== n.name || old.role !== n.role) this.#place(c)
  }

  removeNode(id: string): void {
    const c = this.#columns.get(id)
    if (!c) return
    c.node = undefined
    if (c.tasks === 0) this.#drop(c)
  }

  upsertTask(t: UiTask): void {
    let card = this.#cards.get(t.id)
    const target = this.#column(t.nodeId || UNASSIGNED)
    if (!card) {
      const title = el('span', { class: 'task-name' })
      const tag = el('span', { class: 'tag' })
      const state = el('span', { class: 'state' })
      const err = el('span', { class: 'err' })
      // Not a tab stop each: 10,000 cards would bury the controls; screen readers read them as a list.
      const root = el('li', { class: 'card', 'data-task': t.id }, title, tag, state, err)
      root.style.setProperty('--h', String(hueOf(t.serviceId)))
      card = { root, title, tag, state, err, task: t }
      this.#cards.set(t.id, card)
      target.cards.append(root)
      this.#count(target, 1)
      this.#fill(card, t, undefined)
      return
    }
    const old = card.task
    card.task = t
    if (old.nodeId !== t.nodeId) {
      const from = this.#columns.get(old.nodeId || UNASSIGNED)
      target.cards.append(card.root)
      this.#count(target, 1)
      if (from) this.#count(from, -1)
    }
    this.#fill(card, t, old)
  }

  #fill(card: Card, t: UiTask, old: UiTask | undefined): void {
    if (!old || old.service !== t.service || old.slot !== t.slot)
      setText(card.title, t.slot > 0 ? `${t.service}.${t.slot}` : t.service)
    if (!old || old.image !== t.image) {
      setText(card.tag, imageTag(t.image))
      card.tag.title = t.image
    }
    if (!old || old.state !== t.state) {
      setText(card.state, t.state)
      card.root.dataset.state = t.state
    }
    if (!old || old.err !== t.err) {
      setText(card.err, t.err)
      card.err.hidden = t.err === ''
    }
    card.root.setAttribute(
      'aria-label',
      `task ${card.title.textContent} ${t.image} ${t.state}${t.err ? `: ${t.err}` : ''}`,
    )
  }

  removeTask(id: string): void {
    const card = this.#cards.get(id)
    if (!card) return
    this.#cards.delete(id)
    card.root.remove()
    const c = this.#columns.get(card.task.nodeId || UNASSIGNED)
    if (c) this.#count(c, -1)
  }

  /** Writes the task counts changed since the last call (once per message, not once per card). */
  flush(): void {
    for (const c of this.#dirty) setText(c.count, `${c.tasks} task${c.tasks === 1 ? '' : 's'}`)
    this.#dirty.clear()
  }

  #count(c: Column, delta: number): void {
    c.tasks += delta
    this.#dirty.add(c)
    // A column with no node and no card left (the unassigned one, a removed node's) goes.
    if (c.tasks === 0 && !c.node) this.#drop(c)
  }
}

function sortKey(c: Column): string {
  if (!c.node) return c.root.dataset.node === UNASSIGNED ? '3' : `2${c.root.dataset.node}`
  return `${c.node.role === 'manager' ? '0' : '1'}${c.node.name}`
}
