// What holds a process's memory, from a V8 heap snapshot (`node bench/store-memory/heap-top.mjs FILE [PER]`):
// the objects with the largest retained size (dominator tree), each with the path that reaches it from the
// roots, the object types by self size, and the object types by what they retain (each object counted once:
// under the outermost object of its type on its dominator chain). PER divides the sizes (bytes per task).
// Snapshots of any size (heap-read.mjs streams the file; run with --max-old-space-size for large ones).
import { readHeapSnapshot } from './heap-read.mjs'

const [file, perArg] = process.argv.slice(2)
const per = Number(perArg ?? 1)
const snap = readHeapSnapshot(file)
const meta = snap.snapshot.meta
const nf = meta.node_fields
const ef = meta.edge_fields
const NS = nf.length
const ES = ef.length
const nodeTypes = meta.node_types[0]
const edgeTypes = meta.edge_types[0]
const [nType, nName, nSize, nEdges] = ['type', 'name', 'self_size', 'edge_count'].map((k) => nf.indexOf(k))
const [eType, eName, eTo] = ['type', 'name_or_index', 'to_node'].map((k) => ef.indexOf(k))
const nodes = snap.nodes
const edges = snap.edges
const strings = snap.strings
const N = nodes.length / NS
const firstEdge = new Uint32Array(N + 1)
for (let i = 0, e = 0; i < N; i++) {
  firstEdge[i] = e
  e += nodes[i * NS + nEdges] * ES
  firstEdge[i + 1] = e
}
const weak = edgeTypes.indexOf('weak')
const shortcut = edgeTypes.indexOf('shortcut')
const name = (i) => {
  const t = nodeTypes[nodes[i * NS + nType]]
  const s = strings[nodes[i * NS + nName]]
  return t === 'object' || t === 'native' || t === 'closure'
    ? `${t === 'closure' ? 'fn ' : ''}${s}`
    : `(${t})`
}
const edgeName = (e) => {
  const t = edgeTypes[edges[e + eType]]
  return t === 'element' || t === 'hidden' ? `[${edges[e + eName]}]` : String(strings[edges[e + eName]])
}

// Reverse postorder DFS from the root (node 0), then Cooper-Harvey-Kennedy dominators.
const order = new Int32Array(N).fill(-1)
const post = []
const parent = new Int32Array(N).fill(-1)
const parentEdge = new Int32Array(N).fill(-1)
{
  const stack = [0]
  const it = new Uint32Array(N)
  order[0] = 0
  for (let i = 0; i < N; i++) it[i] = firstEdge[i]
  while (stack.length) {
    const v = stack[stack.length - 1]
    let pushed = false
    while (it[v] < firstEdge[v + 1]) {
      const e = it[v]
      it[v] += ES
      const t = edges[e + eType]
      if (t === weak || t === shortcut) continue
      const w = edges[e + eTo] / NS
      if (order[w] !== -1) continue
      order[w] = 0
      parent[w] = v
      parentEdge[w] = e
      stack.push(w)
      pushed = true
      break
    }
    if (!pushed) post.push(stack.pop())
  }
}
const rpo = post.reverse()
const index = new Int32Array(N).fill(-1)
rpo.forEach((v, i) => {
  index[v] = i
})
// Predecessors.
const predCount = new Uint32Array(N + 1)
for (let v = 0; v < N; v++) {
  if (index[v] < 0) continue
  for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += ES) {
    const t = edges[e + eType]
    if (t === weak || t === shortcut) continue
    predCount[edges[e + eTo] / NS + 1]++
  }
}
for (let i = 0; i < N; i++) predCount[i + 1] += predCount[i]
const preds = new Int32Array(predCount[N])
const fill = predCount.slice()
for (let v = 0; v < N; v++) {
  if (index[v] < 0) continue
  for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += ES) {
    const t = edges[e + eType]
    if (t === weak || t === shortcut) continue
    const w = edges[e + eTo] / NS
    preds[fill[w]++] = v
  }
}
const idom = new Int32Array(N).fill(-1)
idom[0] = 0
for (let changed = true; changed; ) {
  changed = false
  for (let i = 1; i < rpo.length; i++) {
    const v = rpo[i]
    let d = -1
    for (let p = predCount[v]; p < predCount[v + 1]; p++) {
      const u = preds[p]
      if (idom[u] === -1) continue
      if (d === -1) {
        d = u
        continue
      }
      let a = u
      let b = d
      while (a !== b) {
        while (index[a] > index[b]) a = idom[a]
        while (index[b] > index[a]) b = idom[b]
      }
      d = a
    }
    if (d !== -1 && idom[v] !== d) {
      idom[v] = d
      changed = true
    }
  }
}
const retained = new Float64Array(N)
for (let i = rpo.length - 1; i >= 0; i--) {
  const v = rpo[i]
  retained[v] += nodes[v * NS + nSize]
  if (v !== 0) retained[idom[v]] += retained[v]
}
const path = (v) => {
  const parts = []
  for (let x = v, n = 0; x > 0 && n < 8; x = parent[x], n++) {
    if (parentEdge[x] >= 0) parts.unshift(`${name(parent[x])}.${edgeName(parentEdge[x])}`)
  }
  return parts.join(' > ')
}
const mb = (b) => (b / 2 ** 20).toFixed(1)
const total = retained[0]
console.log(
  `${file}: ${N} objects, ${mb(total)} MiB reachable${per > 1 ? ` (${Math.round(total / per)} B per unit)` : ''}`,
)
// The largest retainers that are not just the chain above a larger one: skip a node when one child holds
// nearly all it retains.
const big = []
for (let v = 1; v < N; v++) {
  if (index[v] < 0 || retained[v] < total / 200) continue
  let maxChild = 0
  // children in the dominator tree: approximated via edges whose target's idom is v
  for (let e = firstEdge[v]; e < firstEdge[v + 1]; e += ES) {
    const w = edges[e + eTo] / NS
    if (idom[w] === v) maxChild = Math.max(maxChild, retained[w])
  }
  if (maxChild > retained[v] * 0.9) continue
  big.push(v)
}
big.sort((a, b) => retained[b] - retained[a])
console.log('largest retainers (retained MiB, per unit B, object, path from the roots):')
for (const v of big.slice(0, 25)) {
  console.log(
    `  ${mb(retained[v]).padStart(7)} ${String(Math.round(retained[v] / per)).padStart(7)}  ${name(v).slice(0, 40)}  <- ${path(v).slice(0, 220)}`,
  )
}
const by = new Map()
for (let v = 0; v < N; v++) {
  const k = name(v).slice(0, 40)
  const e = by.get(k) ?? [0, 0]
  e[0]++
  e[1] += nodes[v * NS + nSize]
  by.set(k, e)
}
console.log('types by self size (MiB, count, per unit B):')
for (const [k, [n, b]] of [...by].sort((a, b) => b[1][1] - a[1][1]).slice(0, 15)) {
  console.log(
    `  ${mb(b).padStart(7)} ${String(n).padStart(9)} ${String(Math.round(b / per)).padStart(6)}  ${k}`,
  )
}
// Retained by type: an object's retained size counts for its type unless an object of the same type
// dominates it already (a Map inside a Map counts once, for the outer one).
const byRetained = new Map()
{
  const nameIndex = new Int32Array(N)
  for (let v = 0; v < N; v++) nameIndex[v] = nodes[v * NS + nName] * 16 + nodes[v * NS + nType]
  const typeAbove = (v) => {
    for (let x = idom[v]; x !== 0 && x !== -1; x = idom[x]) if (nameIndex[x] === nameIndex[v]) return true
    return false
  }
  for (const v of rpo) {
    if (v === 0 || retained[v] < 4096) continue
    if (typeAbove(v)) continue
    const k = name(v).slice(0, 40)
    const e = byRetained.get(k) ?? [0, 0]
    e[0]++
    e[1] += retained[v]
    byRetained.set(k, e)
  }
}
console.log('types by retained size, objects retaining 4 KiB or more (MiB, count, per unit B):')
for (const [k, [n, b]] of [...byRetained].sort((a, b) => b[1][1] - a[1][1]).slice(0, 25)) {
  console.log(
    `  ${mb(b).padStart(7)} ${String(n).padStart(9)} ${String(Math.round(b / per)).padStart(6)}  ${k}`,
  )
}
