// The traffic of the overlay benchmarks, as scripts run with `node -e` inside the namespaces they measure:
// a sink and a sender (byte throughput), and a request loop with its server (new connections per second).
// Shared by bench/overlay-swarm (the data plane alone) and bench/overlay-cluster (through the cluster).

/** Counts the bytes of each connection and answers the total when the client ends. argv: port. */
export const sink = `
const net = require('node:net')
net.createServer({ allowHalfOpen: true }, (c) => {
  let n = 0; c.on('data', (d) => (n += d.length)); c.on('end', () => c.end(n + '\\n')); c.on('error', () => {})
}).listen(Number(process.argv[1]), '0.0.0.0', () => console.log('ready'))`

/** Sends argv[3] bytes to argv[1]:argv[2]; prints MiB/s from the first byte to the sink's answer. */
export const sender = `
const net = require('node:net'), [host, port, bytes] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])]
const chunk = Buffer.alloc(256 * 1024, 7), start = process.hrtime.bigint()
const c = net.connect({ host, port, allowHalfOpen: true }); let sent = 0, reply = ''
const pump = () => { while (sent < bytes) { sent += chunk.length; if (!c.write(chunk)) return void c.once('drain', pump) } c.end() }
c.on('connect', pump); c.on('data', (d) => (reply += d))
c.on('end', () => { const s = Number(process.hrtime.bigint() - start) / 1e9; console.log((Number(reply) / s / 1048576).toFixed(1)) })
c.on('error', (e) => { console.log('ERR ' + e.code); process.exit(2) })`

/** Answers each connection's first line with `ok` and closes. argv: port. */
export const echoServer = `
require('node:net').createServer((c) => {
  c.on('error', () => {}); c.once('data', () => c.end('ok\\n'))
}).listen(Number(process.argv[1]), '0.0.0.0', () => console.log('ready'))`

/**
 * argv: host, port, seconds, concurrency. Opens a connection, sends a line, waits for the answer and the
 * close, again and again, for the given time; prints requests per second.
 */
export const requester = `
const net = require('node:net'), [host, port, secs, conc] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4])]
const end = Date.now() + secs * 1000; let done = 0, failed = 0
const one = () => new Promise((resolve) => {
  const c = net.connect({ host, port }); let got = ''
  c.on('connect', () => c.write('hi\\n')); c.on('data', (d) => (got += d))
  c.on('close', () => { if (got.startsWith('ok')) done++; else failed++; resolve() }); c.on('error', () => {})
})
const loop = async () => { while (Date.now() < end) await one() }
const start = Date.now()
Promise.all(Array.from({ length: conc }, loop)).then(() => {
  console.log(Math.round(done / ((Date.now() - start) / 1000)) + ' ' + failed)
})`
