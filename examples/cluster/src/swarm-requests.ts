// The bodies of `POST /swarm/init`, `/swarm/join` and `/swarm/unlock` as the docker CLI sends them, checked
// and turned into what the daemon needs; a bad one is a Docker-style 4xx (ApiError) with moby's words.

import { parseUnlockKey } from '@swarmkit/store'
import { ApiError } from './errors.js'

/** `host:port` (or `[v6]:port`, or a bare host taking `defaultPort`); a bad port is a 400. */
export function splitHostPort(address: string, defaultPort: number): { host: string; port: number } {
  const cut = address.lastIndexOf(':')
  if (cut < 0 || address.endsWith(']')) return { host: address.replace(/^\[|\]$/g, ''), port: defaultPort }
  const port = Number(address.slice(cut + 1))
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new ApiError(400, `invalid address ${address}`)
  return { host: address.slice(0, cut).replace(/^\[|\]$/g, ''), port }
}

/**
 * Where a manager listens and what it advertises, from `ListenAddr` / `AdvertiseAddr` (default
 * `0.0.0.0:2377`; a wildcard listen address advertises loopback). `listenAddr` overrides the body's.
 */
export function swarmAddresses(
  body: { ListenAddr?: unknown; AdvertiseAddr?: unknown },
  listenAddr: string | undefined,
): { host: string; port: number; advertiseHost: string } {
  const listen = listenAddr ?? (typeof body.ListenAddr === 'string' && body.ListenAddr) ?? '0.0.0.0:2377'
  const { host, port } = splitHostPort(listen || '0.0.0.0:2377', 2377)
  const adv = typeof body.AdvertiseAddr === 'string' && body.AdvertiseAddr ? body.AdvertiseAddr : ''
  const advertiseHost = adv
    ? splitHostPort(adv, port).host
    : host === '0.0.0.0' || host === '::'
      ? '127.0.0.1'
      : host
  return { host, port, advertiseHost }
}

/** `docker swarm join`'s managers to try and its token. */
export function joinRequest(body: { RemoteAddrs?: unknown; JoinToken?: unknown }): {
  remotes: string[]
  token: string
} {
  const remotes = Array.isArray(body.RemoteAddrs)
    ? body.RemoteAddrs.filter((a): a is string => typeof a === 'string')
    : []
  if (remotes.length === 0) throw new ApiError(400, 'at least 1 RemoteAddr is required to join')
  if (typeof body.JoinToken !== 'string' || body.JoinToken.length === 0)
    throw new ApiError(400, 'a join token is required')
  return { remotes, token: body.JoinToken }
}

/**
 * `docker swarm unlock`'s key, checked as moby does: what is not `SWMKEY-1-` and unpadded base64 is
 * "invalid key string" (400); base64 of the wrong length, like a key of another swarm, is an invalid key (401).
 */
export function checkUnlockKeyRequest(key: unknown): string {
  if (typeof key !== 'string' || key.length > 256) throw new ApiError(400, 'an unlock key is required')
  const b64 = /^SWMKEY-1-([A-Za-z0-9+/]*)$/.exec(key.trim())?.[1]
  if (b64 === undefined || b64.length % 4 === 1) throw new ApiError(400, 'invalid key string')
  try {
    parseUnlockKey(key)
  } catch {
    throw new ApiError(401, 'swarm could not be unlocked: invalid key provided')
  }
  return key
}
