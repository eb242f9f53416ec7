/**
 * A binary min-heap ordered by (at, seq): earliest first, then first scheduled (the manual clock's timers).
 * The scheduler has its own heap (`KeyHeap`): a different structure (integer ids with keys in typed arrays),
 * and the scheduler may not import transport.
 */
export interface HeapItem {
  at: number
  seq: number
}

export class MinHeap<T extends HeapItem> {
  private readonly items: T[] = []

  get size(): number {
    return this.items.length
  }

  peek(): T | undefined {
    return this.items[0]
  }

  push(item: T): void {
    const a = this.items
    a.push(item)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!less(a[i]!, a[p]!)) break
      const t = a[i]!
      a[i] = a[p]!
      a[p] = t
      i = p
    }
  }

  pop(): T | undefined {
    const a = this.items
    const top = a[0]
    const last = a.pop()
    if (a.length > 0 && last !== undefined) {
      a[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < a.length && less(a[l]!, a[m]!)) m = l
        if (r < a.length && less(a[r]!, a[m]!)) m = r
        if (m === i) break
        const t = a[i]!
        a[i] = a[m]!
        a[m] = t
        i = m
      }
    }
    return top
  }

  clear(): T[] {
    return this.items.splice(0)
  }
}

function less(x: HeapItem, y: HeapItem): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq)
}
