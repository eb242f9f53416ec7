import dgram from 'node:dgram'
import net from 'node:net'

/** A port free on `host` for both TCP and UDP right now (asked from the kernel, then released). */
export async function freePort(host: string): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = net.createServer()
      s.once('error', reject)
      s.listen(0, host, () => {
        const p = (s.address() as net.AddressInfo).port
        s.close(() => resolve(p))
      })
    })
    const ok = await new Promise<boolean>((resolve) => {
      const u = dgram.createSocket('udp4')
      u.once('error', () => resolve(false))
      u.bind(port, host, () => u.close(() => resolve(true)))
    })
    if (ok) return port
  }
}

/** TCP servers on 127.0.0.1 that answer each connection with their name, then echo. */
export async function tcpBackends(names: string[]): Promise<{ ports: number[]; close: () => Promise<void> }> {
  const open = new Set<net.Socket>()
  const servers = await Promise.all(
    names.map(
      (name) =>
        new Promise<net.Server>((resolve) => {
          const s = net.createServer((c) => {
            open.add(c)
            c.on('close', () => open.delete(c))
            c.write(`${name}\n`)
            c.pipe(c)
            c.on('error', () => {})
          })
          s.listen(0, '127.0.0.1', () => resolve(s))
        }),
    ),
  )
  return {
    ports: servers.map((s) => (s.address() as net.AddressInfo).port),
    close: async () => {
      for (const c of open) c.destroy()
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
    },
  }
}

/** Connects, reads the first line (the backend's name), closes. */
export function hello(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, host)
    let buf = ''
    c.on('data', (d) => {
      buf += d
      const i = buf.indexOf('\n')
      if (i >= 0) {
        c.destroy()
        resolve(buf.slice(0, i))
      }
    })
    c.on('error', reject)
    c.on('close', () => reject(new Error('closed before a line')))
  })
}

/** UDP servers on 127.0.0.1 that reply `<name>:<payload>`. */
export async function udpBackends(names: string[]): Promise<{ ports: number[]; close: () => Promise<void> }> {
  const socks = await Promise.all(
    names.map(
      (name) =>
        new Promise<dgram.Socket>((resolve) => {
          const s = dgram.createSocket('udp4')
          s.on('message', (m, r) => s.send(`${name}:${m}`, r.port, r.address))
          s.bind(0, '127.0.0.1', () => resolve(s))
        }),
    ),
  )
  return {
    ports: socks.map((s) => s.address().port),
    close: async () => {
      await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))))
    },
  }
}
