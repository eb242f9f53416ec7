import type { MeshService } from '../mesh.js'
import { parseIp } from './ip.js'

const MAX_ENDPOINTS = 100_000

/** Validates a service to publish and returns a copy the caller cannot change underneath. */
export function checkService(s: unknown): MeshService {
  if (typeof s !== 'object' || s === null) throw new TypeError('service must be an object')
  const m = s as MeshService
  if (typeof m.service !== 'string' || m.service.length === 0 || m.service.length > 256)
    throw new TypeError('service.service must be a non-empty string')
  if (m.protocol !== 'tcp' && m.protocol !== 'udp') throw new TypeError('service.protocol must be tcp or udp')
  if (!Number.isInteger(m.publishedPort) || m.publishedPort < 1 || m.publishedPort > 65535)
    throw new RangeError('service.publishedPort must be an integer in 1..65535')
  const mode = m.publishMode ?? 'ingress'
  if (mode !== 'ingress' && mode !== 'host')
    throw new TypeError('service.publishMode must be ingress or host')
  if (!Array.isArray(m.endpoints) || m.endpoints.length > MAX_ENDPOINTS)
    throw new TypeError('service.endpoints must be an array')
  const endpoints = m.endpoints.map((e, i) => {
    if (typeof e !== 'object' || e === null) throw new TypeError(`service.endpoints[${i}] must be an object`)
    parseIp(e.address, `service.endpoints[${i}].address`)
    if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535)
      throw new RangeError(`service.endpoints[${i}].port must be an integer in 1..65535`)
    if (e.node !== undefined && typeof e.node !== 'string')
      throw new TypeError(`service.endpoints[${i}].node must be a string`)
    return { ...e }
  })
  return {
    service: m.service,
    protocol: m.protocol,
    publishedPort: m.publishedPort,
    publishMode: mode,
    endpoints,
  }
}

/** What a mesh listens on, ordered by port then protocol (`RoutingMesh.listening()` of either mode). */
export function listeningOf(
  entries: Iterable<{ spec: MeshService }>,
): Array<{ protocol: 'tcp' | 'udp'; port: number; service: string }> {
  return [...entries]
    .map((e) => ({ protocol: e.spec.protocol, port: e.spec.publishedPort, service: e.spec.service }))
    .sort((a, b) => a.port - b.port || (a.protocol < b.protocol ? -1 : 1))
}
