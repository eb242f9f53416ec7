import { createServer, type Server, type Socket } from 'node:net'
import { FileLogStorage, isRaftError, RaftNode } from '@swarmkit/raft'
import { tcpTransport } from '@swarmkit/transport'
import { checkPut, KvStateMachine } from './kv.js'
import {
  decodeRequest,
  encodeError,
  encodeIndexResponse,
  encodeResponse,
  FrameReader,
  OP_PUT,
  STATUS_ERROR,
  STATUS_NOT_FOUND,
  STATUS_OK,
} from './protocol.js'

/** Options of {@link startKvServer}. */
export interface KvServerOptions {
  /** This member's ID. */
  readonly id: string
  /** Every member with its raft address (`host:port`), this one included. */
  readonly peers: readonly { readonly id: string; readonly address: string }[]
  /** Where this member keeps its log and snapshots. */
  readonly dataDir: string
  /** Where clients connect (`host:port`; port 0 picks one). */
  readonly clientAddress: string
  /** Cluster ID recorded in the data directory. Default `'raft-kv'`. */
  readonly clusterId?: string
  /**
   * Snapshot the map every this many applied entries. Default 100,000 (etcd's default `snapshot-count`): the
   * map is serialized whole, so snapshots much more often cost latency under heavy write load.
   */
  readonly snapshotThreshold?: number
  /** Zeros written ahead of the log's records (FileLogStorage's `preallocateBytes`). Default: its default. */
  readonly preallocateBytes?: number
  /** Lines about what happens (leader changes, errors). Default: silent. */
  readonly log?: (line: string) => void
}

/** A running raft-kv member. */
export interface KvServer {
  readonly node: RaftNode
  readonly state: KvStateMachine
  /** The client address actually listened on. */
  readonly clientAddress: string
  close(): Promise<void>
}

function splitHostPort(address: string): { host: string; port: number } {
  const cut = address.lastIndexOf(':')
  const port = Number(address.slice(cut + 1))
  if (cut <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`address must be host:port, got ${JSON.stringify(address)}`)
  }
  return { host: address.slice(0, cut), port }
}

/** Starts one member: its file storage, its raft node on TCP, and the client listener. */
export async function startKvServer(options: KvServerOptions): Promise<KvServer> {
  const { id, peers, dataDir } = options
  const self = peers.find((p) => p.id === id)
  if (!self) throw new TypeError(`options.peers must include this member (${id})`)
  const log = options.log ?? (() => {})
  const state = new KvStateMachine()
  const storage = await FileLogStorage.open(dataDir, {
    nodeId: id,
    clusterId: options.clusterId ?? 'raft-kv',
    ...(options.preallocateBytes !== undefined && { preallocateBytes: options.preallocateBytes }),
  })
  const node = new RaftNode({
    id,
    peers: peers.map((p) => ({ id: p.id, address: p.address })),
    transport: tcpTransport(),
    storage,
    snapshotThreshold: options.snapshotThreshold ?? 100_000,
    stateMachine: {
      apply: (command, index) => state.apply(command, index),
      snapshot: () => state.snapshotAsync(),
      restore: (snapshot) => state.restore(snapshot),
    },
  })
  node.on('leader:change', (leaderId, term) => log(`leader ${leaderId ?? 'none'} term ${term}`))
  await node.start()

  const sockets = new Set<Socket>()
  const server: Server = createServer({ noDelay: true }, (socket) => serve(socket))
  const { host, port } = splitHostPort(options.clientAddress)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const bound = server.address()
  const clientAddress = typeof bound === 'object' && bound ? `${host}:${bound.port}` : options.clientAddress

  function serve(socket: Socket): void {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    const reader = new FrameReader()
    // Answers settled together (one batch of applied entries) go out in one write, at the end of the current
    // microtask queue rather than a turn of the event loop later.
    let out: Buffer[] = []
    let outBytes = 0
    const flush = () => {
      const frames = out
      const bytes = outBytes
      out = []
      outBytes = 0
      if (socket.destroyed) return
      socket.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames, bytes))
    }
    const send = (frame: Buffer) => {
      if (socket.destroyed) return
      if (out.length === 0) queueMicrotask(flush)
      out.push(frame)
      outBytes += frame.length
    }
    const fail = (reqId: number, e: unknown) => {
      const code = isRaftError(e) ? e.code : 'INTERNAL'
      send(encodeResponse(reqId, STATUS_ERROR, encodeError(code, (e as Error)?.message ?? String(e))))
    }
    socket.on('data', (chunk) => {
      try {
        reader.push(chunk, (body) => {
          if (body.length >= 7 && body[4] === OP_PUT) {
            // A put request from its op byte on (op, key length, key, value) is laid out as the kv command
            // (PUT = OP_PUT): it is proposed as it arrived, a view of the request, once checked (no key
            // decoded and encoded again, no copy).
            if (7 + body.readUInt16LE(5) > body.length) throw new Error('malformed request')
            const id = body.readUInt32LE(0)
            let command: Uint8Array
            try {
              command = checkPut(body.subarray(4))
            } catch (e) {
              return fail(id, e)
            }
            node.propose(command).then(
              ({ index }) => send(encodeIndexResponse(id, index)),
              (e) => fail(id, e),
            )
            return
          }
          const req = decodeRequest(body)
          node.readIndex().then(
            () => {
              const v = state.get(req.key)
              send(
                v
                  ? encodeResponse(req.id, STATUS_OK, v)
                  : encodeResponse(req.id, STATUS_NOT_FOUND, new Uint8Array(0)),
              )
            },
            (e) => fail(req.id, e),
          )
        })
      } catch (e) {
        log(`client ${socket.remoteAddress}:${socket.remotePort}: ${(e as Error).message}; closing`)
        socket.destroy()
      }
    })
  }

  return {
    node,
    state,
    clientAddress,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      })
      await node.stop()
      await storage.close()
    },
  }
}
