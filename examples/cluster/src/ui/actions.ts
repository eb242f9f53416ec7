/// <reference lib="dom" />
// The page's actions, each through the Engine API routes the docker CLI uses (same origin, same TLS):
// read the object and its version, change its spec, post the update with that version.

const API = '/v1.50'

export class ApiFailure extends Error {
  override readonly name = 'ApiFailure'
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

async function call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const res = await fetch(API + path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(15_000),
  })
  const text = await res.text()
  const value = text ? JSON.parse(text) : undefined
  if (!res.ok) throw new ApiFailure(res.status, value?.message ?? `${res.status} ${res.statusText}`)
  return value as T
}

interface Versioned<S> {
  Version: { Index: number }
  Spec: S
}

/** `docker service scale NAME=N`. */
export async function scaleService(id: string, replicas: number): Promise<void> {
  const s = await call<Versioned<{ Mode: { Replicated?: { Replicas: number } } }>>('GET', `/services/${id}`)
  if (!s.Spec.Mode.Replicated) throw new ApiFailure(400, 'scale can only be used with replicated mode')
  s.Spec.Mode.Replicated.Replicas = replicas
  await call('POST', `/services/${id}/update?version=${s.Version.Index}`, s.Spec)
}

/** `docker service rollback NAME`. */
export async function rollbackService(id: string): Promise<void> {
  const s = await call<Versioned<unknown>>('GET', `/services/${id}`)
  await call('POST', `/services/${id}/update?version=${s.Version.Index}&rollback=previous`, s.Spec)
}

/** `docker node update --availability active|drain NODE`. */
export async function setNodeAvailability(id: string, availability: 'active' | 'drain'): Promise<void> {
  const n = await call<Versioned<Record<string, unknown>>>('GET', `/nodes/${id}`)
  await call('POST', `/nodes/${id}/update?version=${n.Version.Index}`, {
    ...n.Spec,
    Availability: availability,
  })
}

/** `docker swarm join-token --rotate worker|manager`. */
export async function rotateJoinToken(role: 'worker' | 'manager'): Promise<void> {
  const s = await call<Versioned<unknown>>('GET', '/swarm')
  const flag = role === 'worker' ? 'rotateWorkerToken' : 'rotateManagerToken'
  await call('POST', `/swarm/update?version=${s.Version.Index}&${flag}=true`, s.Spec)
}
