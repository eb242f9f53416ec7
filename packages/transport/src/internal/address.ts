/** Parse `host:port` (IPv6 hosts in brackets: `[::1]:7946`). Port 0 asks for any free port. */
export function parseHostPort(address: string): { host: string; port: number } {
  let host: string
  let portText: string
  if (address.startsWith('[')) {
    const end = address.indexOf(']')
    if (end < 0 || address[end + 1] !== ':') throw new TypeError(`address must be host:port, got ${address}`)
    host = address.slice(1, end)
    portText = address.slice(end + 2)
  } else {
    const i = address.lastIndexOf(':')
    if (i <= 0 || address.indexOf(':') !== i) throw new TypeError(`address must be host:port, got ${address}`)
    host = address.slice(0, i)
    portText = address.slice(i + 1)
  }
  const port = Number(portText)
  if (!/^\d{1,5}$/.test(portText) || port > 65535) throw new TypeError(`address has a bad port: ${address}`)
  if (host.length === 0) throw new TypeError(`address has no host: ${address}`)
  return { host, port }
}

export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
