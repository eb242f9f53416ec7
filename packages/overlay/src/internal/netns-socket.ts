// Sockets that live in another network namespace but are served by this process. Node cannot setns(2), so
// a short-lived helper (`ip netns exec NS node -e …`) binds them there and hands them over the IPC channel
// (SCM_RIGHTS under the hood); a socket keeps the namespace it was created in, so this process then answers
// at e.g. 127.0.0.11:53 inside a task's namespace with no NAT and no route from the task to the node.
import { spawn } from 'node:child_process'
import type dgram from 'node:dgram'
import type net from 'node:net'
import { OverlayError } from '../errors.js'

const HELPER = `
const dgram = require('node:dgram'), net = require('node:net')
const [address, port] = [process.argv[1], Number(process.argv[2])]
const fail = (e) => { process.send({ error: String(e && e.message || e) }, () => process.exit(1)) }
const udp = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4')
udp.on('error', fail)
udp.bind(port, address, () => {
  const tcp = net.createServer()
  tcp.on('error', fail)
  tcp.listen(udp.address().port, address, () => {
    process.send({ kind: 'udp' }, udp)
    process.send({ kind: 'tcp' }, tcp, () => process.exit(0))
  })
})`

/**
 * Binds a UDP socket and a TCP server on `address:port` inside namespace `ns` and returns them, served by
 * this process. Rejects with `OverlayError` `COMMAND_FAILED` (or `BIND_FAILED`) saying why.
 */
export function socketsInNamespace(
  ns: string,
  address: string,
  port: number,
  options?: { signal?: AbortSignal; timeoutMs?: number },
): Promise<{ udp: dgram.Socket; tcp: net.Server }> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', HELPER, address, String(port)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      signal: options?.signal,
    })
    let stderr = ''
    child.stderr!.on('data', (d) => {
      if (stderr.length < 2000) stderr += d
    })
    let udp: dgram.Socket | undefined
    let tcp: net.Server | undefined
    let settled = false
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      done(new OverlayError('COMMAND_FAILED', `binding ${address}:${port} in namespace ${ns} timed out`))
    }, options?.timeoutMs ?? 20_000)
    const done = (err?: Error) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err !== undefined) {
        udp?.close()
        tcp?.close()
        reject(err)
      } else resolve({ udp: udp!, tcp: tcp! })
    }
    child.on('message', (m: { kind?: string; error?: string }, handle) => {
      if (m.error !== undefined)
        done(new OverlayError('BIND_FAILED', `cannot bind ${address}:${port} in namespace ${ns}: ${m.error}`))
      else if (m.kind === 'udp') udp = handle as dgram.Socket
      else if (m.kind === 'tcp') tcp = handle as net.Server
      if (udp !== undefined && tcp !== undefined) done()
    })
    child.on('error', (err) =>
      done(new OverlayError('COMMAND_FAILED', `cannot run ip netns exec: ${err.message}`, { cause: err })),
    )
    child.on('exit', (code) => {
      if (udp === undefined || tcp === undefined)
        done(
          new OverlayError(
            'COMMAND_FAILED',
            `binding ${address}:${port} in namespace ${ns} failed (exit ${code}): ${stderr.trim().slice(0, 300)}`,
          ),
        )
    })
  })
}
