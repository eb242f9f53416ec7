// On-CPU time of Node processes by JavaScript function or by package, from `perf script` output. The V8
// profiles of SCALE_PROFILE sample wall-clock time: on a loaded machine a process that is descheduled is
// sampled where it resumes, which is mostly right after a syscall that woke another process (a socket write
// on loopback), so those functions look far costlier than they are. perf's cpu-clock event counts only time
// on a CPU. Run the bench with NODE_OPTIONS=--perf-basic-prof (JIT symbols in /tmp/perf-PID.map), then e.g.
//   perf record -e cpu-clock -F 199 -g -p PID1,PID2,PID3 -o perf.data -- sleep 60
//   perf script -i perf.data | node bench/cluster-scale/perf-top.mjs [js|package|leaf] [rows] [PATTERN]
// `js`: time of native code counts for the nearest JavaScript frame above it; `package`: the same summed by
// workspace package, npm package or node: module (GC and compiler threads on their own rows); `leaf`: the
// sampled frame and its nearest JavaScript frame. With PATTERN (a regular expression), only the samples whose
// stack holds a matching frame are counted, and the total line says what share of all samples that is.
// A caveat: V8 reuses code space, and a perf map keeps old entries, so with --perf-basic-prof some JIT frames
// get a stale name (native frames, GC and the compiler are always right). NODE_OPTIONS=--perf-prof writes
// jitdump files (jit-PID.dump, in each process's working directory) that name code by time instead: record
// with `perf record -k mono ...`, then `perf inject --jit -i perf.data -o perf.jit.data` and read that.
import { createInterface } from 'node:readline'

const mode = process.argv[2] ?? 'js'
const rows = Number(process.argv[3] ?? 40)
const pattern = process.argv[4] ? new RegExp(process.argv[4]) : undefined
const counts = new Map()
let total = 0
let kept = 0
let stack = []

const shorten = (frame) => frame.replace(/file:\/\/\/\S*?\/(packages|examples|node_modules)\//, '$1/')
function packageOf(frames, js) {
  if (js) {
    const m = js.match(/packages\/([^/]+)|examples\/([^/]+)|node_modules\/((?:@[^/]+\/)?[^/]+)|(node:[^ :]+)/)
    if (m) return m[1] ?? m[2] ?? m[3] ?? m[4]
    return 'JS (other)'
  }
  if (frames.some((f) => /Scavenge|MarkCompact|ConcurrentMarking|Sweeper|GCTracer|Heap::|MinorMC/.test(f)))
    return '(GC)'
  if (frames.some((f) => /Compil|compiler::/.test(f))) return '(compiler)'
  return `(native) ${frames[0]?.slice(0, 50) ?? ''}`
}

function flush() {
  if (stack.length === 0) return
  total++
  if (pattern && !stack.some((f) => pattern.test(f))) return
  kept++
  const js = stack.find((f) => f.startsWith('JS:'))
  const key =
    mode === 'package'
      ? packageOf(stack, js)
      : mode === 'leaf'
        ? `${stack[0].slice(0, 60)} <- ${js ? shorten(js) : '-'}`
        : js
          ? shorten(js)
          : `(native) ${stack[0]}`
  counts.set(key, (counts.get(key) ?? 0) + 1)
}

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === '') {
    flush()
    stack = []
  } else if (line[0] === '\t' || line[0] === ' ') {
    const at = line.trim().indexOf(' ')
    if (at > 0)
      stack.push(
        line
          .trim()
          .slice(at + 1)
          .replace(/\s*\(\S+\)$/, '')
          .replace(/\+0x[0-9a-f]+$/, ''),
      )
  }
}
flush()
for (const [k, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, rows))
  console.log(`${((100 * n) / total).toFixed(2).padStart(6)}%  ${k}`)
console.log(
  `${total} samples${pattern ? `, ${((100 * kept) / total).toFixed(2)}% of them match ${pattern}` : ''}`,
)
