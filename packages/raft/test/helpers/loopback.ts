// A fault-free in-process transport for driver unit tests until @swarmkit/transport's MemoryNetwork is
// available; it implements only the structural surface RaftNode uses.
import { EventEmitter } from 'eventemitter3'

class Conn extends EventEmitter {
  peer: Conn | null = null
  closed = false
  readonly maxFrameBytes = 4 << 20
  send(frame: Uint8Array): boolean {
    if (this.closed) throw new Error('closed')
    const peer = this.peer!
    setImmediate(() => {
      if (!peer.closed) peer.emit('frame:receive', frame)
    })
    return true
  }
  async close(): Promise<void> {
    this.abort()
  }
  abort(): void {
    if (this.closed) return
    this.closed = true
    this.emit('connection:close')
    this.peer?.abort()
  }
}

class Listener extends EventEmitter {
  constructor(
    readonly net: Loopback,
    readonly address: string,
  ) {
    super()
  }
  async close(): Promise<void> {
    this.net.listeners.delete(this.address)
  }
}

export class Loopback {
  readonly listeners = new Map<string, Listener>()
  transport(_name: string) {
    return {
      listen: async (address: string) => {
        const l = new Listener(this, address)
        this.listeners.set(address, l)
        return l
      },
      dial: async (address: string) => {
        const l = this.listeners.get(address)
        if (!l) throw new Error(`nobody listens on ${address}`)
        const a = new Conn()
        const b = new Conn()
        a.peer = b
        b.peer = a
        l.emit('connection:open', b)
        return a
      },
    }
  }
}
