import { connect, type Socket } from 'node:net'
import {
  decodeError,
  encodeRequest,
  FrameReader,
  OP_GET,
  OP_PUT,
  STATUS_ERROR,
  STATUS_NOT_FOUND,
  STATUS_OK,
} from './protocol.js'

/** A failed request: `code` is the server's (e.g. RaftError codes) or `DISCONNECTED`. */
export class KvError extends Error {
  override readonly name = 'KvError'
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

interface Waiter {
  resolve(v: { status: number; payload: Buffer }): void
  reject(e: unknown): void
}

/**
 * A client of one raft-kv member. Any member accepts puts (forwarded to the leader by raft) and serves
 * linearizable gets (ReadIndex); requests are pipelined on one connection, and those made in one turn of the
 * event loop go out in one write.
 */
export class KvClient {
  readonly #socket: Socket
  readonly #waiting = new Map<number, Waiter>()
  #nextId = 1
  #closed: Error | null = null
  /** Requests made in the current turn, written together at the end of its microtask queue. */
  #outgoing: Buffer[] = []
  #outgoingBytes = 0
  readonly #flush = (): void => {
    const out = this.#outgoing
    const bytes = this.#outgoingBytes
    this.#outgoing = []
    this.#outgoingBytes = 0
    if (out.length === 0 || this.#socket.destroyed) return
    this.#socket.write(out.length === 1 ? out[0]! : Buffer.concat(out, bytes))
  }

  private constructor(socket: Socket) {
    this.#socket = socket
    const reader = new FrameReader()
    socket.on('data', (chunk) => {
      try {
        reader.push(chunk, (body) => {
          const id = body.readUInt32LE(0)
          const w = this.#waiting.get(id)
          if (!w) return
          this.#waiting.delete(id)
          w.resolve({ status: body[4]!, payload: body.subarray(5) })
        })
      } catch (e) {
        socket.destroy(e as Error)
      }
    })
    const fail = (e?: Error) => {
      this.#closed ??= new KvError('DISCONNECTED', `connection closed${e ? `: ${e.message}` : ''}`, {
        cause: e,
      })
      for (const w of this.#waiting.values()) w.reject(this.#closed)
      this.#waiting.clear()
    }
    socket.on('error', fail)
    socket.on('close', () => fail())
  }

  /** Connects to a member's client address (`host:port`). */
  static connect(address: string, options?: { signal?: AbortSignal }): Promise<KvClient> {
    const cut = address.lastIndexOf(':')
    const port = Number(address.slice(cut + 1))
    if (cut <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
      throw new TypeError(`address must be host:port, got ${JSON.stringify(address)}`)
    }
    return new Promise((resolve, reject) => {
      const socket = connect({ host: address.slice(0, cut), port, noDelay: true, signal: options?.signal })
      socket.once('error', reject)
      socket.once('connect', () => {
        socket.off('error', reject)
        resolve(new KvClient(socket))
      })
    })
  }

  #call(op: number, key: string, value?: Uint8Array): Promise<{ status: number; payload: Buffer }> {
    if (this.#closed) return Promise.reject(this.#closed)
    const id = this.#nextId
    this.#nextId = (this.#nextId + 1) >>> 0 || 1
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject })
      const frame = encodeRequest(id, op, key, value)
      if (this.#outgoing.length === 0) queueMicrotask(this.#flush)
      this.#outgoing.push(frame)
      this.#outgoingBytes += frame.length
    })
  }

  /** Stores `value` under `key`; resolves with the log index once committed and applied on the member. */
  async put(key: string, value: Uint8Array): Promise<{ index: number }> {
    if (typeof key !== 'string' || key.length === 0) throw new TypeError('key must be a non-empty string')
    if (!(value instanceof Uint8Array)) throw new TypeError('value must be a Uint8Array')
    const r = await this.#call(OP_PUT, key, value)
    if (r.status === STATUS_OK) return { index: r.payload.readDoubleLE(0) }
    throw toError(r.status, r.payload)
  }

  /** The value under `key` (undefined if none), reflecting every put that completed before the call. */
  async get(key: string): Promise<Uint8Array | undefined> {
    if (typeof key !== 'string' || key.length === 0) throw new TypeError('key must be a non-empty string')
    const r = await this.#call(OP_GET, key)
    if (r.status === STATUS_OK) return new Uint8Array(r.payload)
    if (r.status === STATUS_NOT_FOUND) return undefined
    throw toError(r.status, r.payload)
  }

  /** Closes the connection; requests still waiting reject with `DISCONNECTED`. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.#socket.destroyed) return resolve()
      this.#socket.once('close', () => resolve())
      this.#socket.end()
    })
  }
}

function toError(status: number, payload: Buffer): KvError {
  if (status === STATUS_ERROR) {
    const { code, message } = decodeError(payload)
    return new KvError(code, message)
  }
  return new KvError('PROTOCOL', `unexpected status ${status}`)
}
