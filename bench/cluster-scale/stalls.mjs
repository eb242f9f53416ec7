// Attributes each manager's event-loop stalls to code: `node bench/cluster-scale/stalls.mjs DIR [minMs]`, DIR
// a SCALE_PROFILE directory (manager-PID.cpuprofile and stalls-PID.json). For every stall of at least minMs
// (default 150) it prints the CPU profile's samples inside it: the functions with the most self time, and the
// project's own functions (packages/, examples/) with the most inclusive time, so a stall is named by the code
// that held the loop (GC and native calls show as `(garbage collector)`, `(program)` or the builtin's name).
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2]
const minMs = Number(process.argv[3] ?? 150)
if (!dir) {
  console.error('usage: node bench/cluster-scale/stalls.mjs DIR [minMs]')
  process.exit(2)
}

const label = (cf) => {
  const file = cf.url ? cf.url.replace(/^.*\/(packages|examples|node_modules)\//, '$1/') : ''
  return `${cf.functionName || '(anonymous)'}${file ? ` ${file}:${cf.lineNumber + 1}` : ''}`
}
const ours = (cf) => /\/(packages|examples)\//.test(cf.url) && !/node_modules/.test(cf.url)

for (const f of readdirSync(dir).filter((x) => /^stalls-\d+\.json$/.test(x))) {
  const pid = f.match(/\d+/)[0]
  const stalls = JSON.parse(readFileSync(join(dir, f), 'utf8')).filter(([, ms]) => ms >= minMs)
  let profile
  try {
    profile = JSON.parse(readFileSync(join(dir, `manager-${pid}.cpuprofile`), 'utf8'))
  } catch {
    console.log(`manager ${pid}: ${stalls.length} stalls of ${minMs} ms or more, no profile (killed?)`)
    continue
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const times = []
  let t = profile.startTime
  for (const d of profile.timeDeltas) times.push((t += d))
  const total = stalls.reduce((a, [, ms]) => a + ms, 0)
  const over300 = stalls.filter(([, ms]) => ms > 300).length
  console.log(
    `\n== manager ${pid}: ${stalls.length} stalls of ${minMs} ms or more (${(total / 1000).toFixed(1)} s), ${over300} over 300 ms, longest ${Math.max(0, ...stalls.map(([, ms]) => ms))} ms`,
  )
  const overall = new Map()
  for (const [start, ms] of stalls) {
    const end = start + ms * 1000
    const self = new Map()
    const incl = new Map()
    let n = 0
    for (let i = 0; i < times.length; i++) {
      if (times[i] < start || times[i] > end) continue
      n++
      const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000
      const leaf = byId.get(profile.samples[i])
      const key = label(leaf.callFrame)
      self.set(key, (self.get(key) ?? 0) + dt)
      const seen = new Set()
      for (let id = leaf.id; id !== undefined; id = parent.get(id)) {
        const cf = byId.get(id).callFrame
        if (!ours(cf)) continue
        const k = label(cf)
        if (seen.has(k)) continue
        seen.add(k)
        incl.set(k, (incl.get(k) ?? 0) + dt)
      }
    }
    const top = (m, k) =>
      [...m]
        .sort((a, b) => b[1] - a[1])
        .slice(0, k)
        .map(([name, v]) => `${v.toFixed(0).padStart(5)} ms  ${name}`)
    const at = ((start - profile.startTime) / 1e6).toFixed(1)
    console.log(`-- ${ms} ms at ${at} s (${n} samples)`)
    console.log(`   self:\n     ${top(self, 5).join('\n     ')}`)
    console.log(`   ours (inclusive):\n     ${top(incl, 6).join('\n     ')}`)
    for (const [k, v] of self) overall.set(k, (overall.get(k) ?? 0) + v)
  }
  console.log(
    `-- all stalls, self:\n     ${[...overall]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([k, v]) => `${v.toFixed(0).padStart(6)} ms  ${k}`)
      .join('\n     ')}`,
  )
}
