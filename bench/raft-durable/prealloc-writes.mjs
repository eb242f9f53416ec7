// Storage-level micro-bench: one O_DSYNC write of a small record, appended to a file against written into space
// already filled with zeros (and synced), with and without a background zero fill running meanwhile.
// Usage: node bench/raft-durable/prealloc-writes.mjs [dir] [writes] [recordBytes]
import * as fs from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2] ?? '/tmp'
const N = Number(process.argv[3] ?? 2000)
const REC = Number(process.argv[4] ?? 300)
const { O_RDWR, O_CREAT, O_TRUNC, O_DSYNC } = fs.constants
const rec = Buffer.alloc(REC, 7)
const MiB = 1 << 20

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
function report(name, lat, cpu) {
  const f = (x) => x.toFixed(3)
  console.log(
    `${name.padEnd(34)} p10 ${f(pct(lat, 10))}  p50 ${f(pct(lat, 50))}  p99 ${f(pct(lat, 99))}  max ${f(Math.max(...lat))} ms  cpu/write ${(cpu / N).toFixed(0)} µs`,
  )
}
function zeroFill(fd, bytes) {
  const z = Buffer.alloc(MiB)
  for (let at = 0; at < bytes; at += MiB) fs.writeSync(fd, z, 0, Math.min(MiB, bytes - at), at)
}
const writeAsync = (fd, buf, pos) =>
  new Promise((ok, fail) => fs.write(fd, buf, 0, buf.length, pos, (e) => (e ? fail(e) : ok())))

async function run(name, prepare, background) {
  const path = join(dir, `prealloc-bench-${process.pid}.log`)
  const fd = fs.openSync(path, O_RDWR | O_CREAT | O_TRUNC | O_DSYNC)
  try {
    prepare(fd)
    const lat = []
    const bg = background ? background(fd) : null
    const c0 = process.cpuUsage()
    for (let i = 0, pos = 0; i < N; i++, pos += REC) {
      const t = performance.now()
      fs.writeSync(fd, rec, 0, REC, pos)
      lat.push(performance.now() - t)
      if (bg) await bg.after(pos + REC)
    }
    const c = process.cpuUsage(c0)
    if (bg) await bg.done()
    report(name, lat, c.user + c.system)
  } finally {
    fs.closeSync(fd)
    fs.unlinkSync(path)
  }
}

const span = N * REC
for (let round = 0; round < 2; round++) {
  await run('append', () => {})
  await run('into zeros (filled ahead, synced)', (fd) => zeroFill(fd, span + MiB))
  // The active file grows in zero-filled windows, each written (O_DSYNC) in the background while writes go on.
  for (const win of [256 * 1024, MiB]) {
    await run(
      `window of ${win >> 10} KiB, same file`,
      (fd) => zeroFill(fd, win),
      (fd) => {
        let end = win
        let filling = null
        return {
          async after(pos) {
            if (pos + REC > end - win / 2 && !filling) {
              const at = end
              filling = writeAsync(fd, Buffer.alloc(win), at).then(() => {
                end = at + win
                filling = null
              })
            }
            if (pos + 2 * REC > end && filling) await filling
            await new Promise((r) => setImmediate(r))
          },
          done: () => filling ?? Promise.resolve(),
        }
      },
    )
  }
  // Records into a filled file while another file is filled with zeros (the next segment, prepared ahead).
  await run(
    'into zeros, next file filled meanwhile',
    (fd) => zeroFill(fd, span + MiB),
    () => {
      const other = join(dir, `prealloc-bench-next-${process.pid}.log`)
      const ofd = fs.openSync(other, O_RDWR | O_CREAT | O_TRUNC | O_DSYNC)
      let at = 0
      let filling = null
      const z = Buffer.alloc(MiB)
      return {
        async after() {
          if (!filling && at < 64 * MiB) {
            filling = writeAsync(ofd, z, at).then(() => {
              at += MiB
              filling = null
            })
          }
          await new Promise((r) => setImmediate(r))
        },
        async done() {
          await filling
          fs.closeSync(ofd)
          fs.unlinkSync(other)
        },
      }
    },
  )
}
