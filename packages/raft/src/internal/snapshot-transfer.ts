// Streaming snapshots between a leader and a follower: the leader sends its latest snapshot in chunks with a
// window of acknowledged bytes, pauses while the connection is over its high-water mark, resumes from the last
// acknowledged byte after a reconnect, and gives up after two election timeouts without progress; the
// follower assembles the chunks and hands the whole snapshot to the core as a Snapshot message.
import type { Clock } from '@swarmkit/transport'
import type { RaftCore } from '../core.js'
import type { ConfState, LogStorage, SnapshotMeta } from '../storage.js'
import { type Message, MessageType } from '../types.js'
import type { Links } from './links.js'
import {
  ACK,
  ACK_ABORT,
  ACK_GAP,
  ACK_OK,
  CHUNK,
  decodeAck,
  decodeChunk,
  encodeAck,
  encodeChunk,
} from './snapshot-wire.js'

/** What the transfers need from their node. */
export interface TransferHost {
  readonly id: string
  readonly clock: Clock
  readonly storage: LogStorage
  readonly chunkBytes: number
  readonly maxSnapshotBytes: number
  readonly electionMaxMs: number
  core(): RaftCore | null
  links(): Links | null
  running(): boolean
  schedule(): void
}

interface Outgoing {
  readonly to: string
  readonly term: number
  readonly meta: SnapshotMeta
  data: Uint8Array | null
  sent: number
  acked: number
  lastProgress: number
  /** Waiting for the connection to drain below its high-water mark (or to open) before sending more. */
  blocked: boolean
}

interface Incoming {
  readonly term: number
  readonly index: number
  readonly logTerm: number
  readonly conf: ConfState
  readonly data: Uint8Array
  received: number
  lastProgress: number
}

/** Snapshot bytes in flight per transfer (flow control window). */
const SNAPSHOT_WINDOW_CHUNKS = 4

export class SnapshotTransfers {
  /** Outgoing snapshot transfers, by follower. */
  private readonly sending = new Map<string, Outgoing>()
  /** Incoming snapshot transfers, by leader. */
  private readonly receiving = new Map<string, Incoming>()

  constructor(private readonly host: TransferHost) {}

  /** Any transfer under way (its deadline is checked on each tick). */
  get active(): boolean {
    return this.sending.size > 0 || this.receiving.size > 0
  }

  async start(m: Message): Promise<void> {
    const core = this.host.core()!
    const cur = this.sending.get(m.to)
    if (cur && cur.data !== null && cur.meta.index === m.index && cur.term === m.term) return
    const snap = await this.host.storage.snapshot().catch(() => null)
    if (!this.host.running()) return
    if (!snap || snap.meta.index !== m.index || snap.meta.term !== m.logTerm) {
      core.reportSnapshot(m.to, false)
      return
    }
    const out: Outgoing = {
      to: m.to,
      term: m.term,
      meta: snap.meta,
      data: snap.data,
      sent: 0,
      acked: 0,
      lastProgress: this.host.clock.now(),
      blocked: false,
    }
    this.sending.set(m.to, out)
    this.pump(out)
  }

  /**
   * Sends chunks while fewer than the window are unacknowledged and the connection takes them: a chunk the
   * transport queued over its high-water mark counts as sent, and the pump waits for the drain.
   */
  private pump(out: Outgoing): void {
    if (out.blocked) return
    const data = out.data!
    const total = data.length
    const window = SNAPSHOT_WINDOW_CHUNKS * this.host.chunkBytes
    while (
      out.sent - out.acked < window &&
      (out.sent < total || (total === 0 && out.sent === 0 && out.acked === 0))
    ) {
      const end = Math.min(total, out.sent + this.host.chunkBytes)
      const frame = encodeChunk({
        term: out.term,
        index: out.meta.index,
        logTerm: out.meta.term,
        offset: out.sent,
        total,
        conf: out.sent === 0 ? out.meta.conf : null,
        data: data.subarray(out.sent, end),
      })
      const sent = this.host.links()!.sendFrame(out.to, frame)
      if (sent === 'unsent') {
        out.blocked = true
        return
      }
      out.sent = end
      if (sent === 'full') {
        out.blocked = true
        return
      }
      if (total === 0) return
    }
  }

  /** The connection to `peer` opened or drained: go on with a snapshot waiting for it. */
  resume(peer: string): void {
    const out = this.sending.get(peer)
    if (!out || out.data === null || !out.blocked || !this.host.running()) return
    out.blocked = false
    this.pump(out)
  }

  /** The connection to `peer` dropped: chunks in flight on it are lost, so go on from the last acknowledged. */
  restart(peer: string): void {
    const out = this.sending.get(peer)
    if (!out || out.data === null || !this.host.running()) return
    out.sent = out.acked
    out.blocked = false
    this.pump(out)
  }

  private abort(out: Outgoing): void {
    if (this.sending.get(out.to) !== out) return
    this.sending.delete(out.to)
    out.data = null
    this.host.core()?.reportSnapshot(out.to, false)
    this.host.schedule()
  }

  receive(peer: string, frame: Uint8Array): void {
    const core = this.host.core()
    if (!core || !this.host.running()) return
    const now = this.host.clock.now()
    if (frame[0] === ACK) {
      const ack = decodeAck(frame)
      const out = this.sending.get(peer)
      if (!out || out.meta.index !== ack.index) return
      if (ack.status === ACK_ABORT || core.role !== 'leader' || core.term !== out.term) {
        this.abort(out)
        return
      }
      if (out.data === null) return
      const total = out.data.length
      if (ack.received > out.acked) {
        out.acked = Math.min(ack.received, total)
        out.lastProgress = now
      }
      // A gap: chunks after `received` were lost; go back and resend from there.
      if (ack.status === ACK_GAP && ack.received >= out.acked && ack.received < out.sent)
        out.sent = ack.received
      // The follower has more than was sent on this connection (a resend after a reconnect): skip ahead.
      if (out.sent < out.acked) out.sent = out.acked
      if (out.acked >= total) {
        // All delivered; the follower answers with an AppendResp once it has installed it. The record stays
        // until the leader sees that answer (or gives up after the timeout and sends the snapshot again).
        out.data = null
        return
      }
      this.pump(out)
      return
    }
    if (frame[0] !== CHUNK) throw new Error(`unknown frame kind ${frame[0]}`)
    const c = decodeChunk(frame, this.host.chunkBytes + 1024, this.host.maxSnapshotBytes)
    if (c.term < core.term) {
      this.host.links()!.sendFrame(peer, encodeAck(c.index, 0, ACK_ABORT))
      return
    }
    let inc = this.receiving.get(peer)
    // A new transfer starts at offset 0 (a duplicate of the first chunk of the current one does not restart it).
    if (c.offset === 0 && (!inc || inc.index !== c.index || inc.term !== c.term)) {
      inc = {
        term: c.term,
        index: c.index,
        logTerm: c.logTerm,
        conf: c.conf!,
        data: new Uint8Array(c.total),
        received: 0,
        lastProgress: now,
      }
      this.receiving.set(peer, inc)
    }
    if (!inc || inc.index !== c.index || inc.term !== c.term || inc.data.length !== c.total) {
      this.host.links()!.sendFrame(peer, encodeAck(c.index, 0, ACK_ABORT))
      return
    }
    // A duplicate is answered with how far this transfer got (the leader went back after losing its connection
    // and skips ahead); a chunk past a gap asks for the resend of what is missing.
    if (c.offset < inc.received || (c.offset === inc.received && c.data.length === 0 && inc.received > 0)) {
      this.host.links()!.sendFrame(peer, encodeAck(c.index, inc.received, ACK_OK))
      return
    }
    if (c.offset > inc.received) {
      this.host.links()!.sendFrame(peer, encodeAck(c.index, inc.received, ACK_GAP))
      return
    }
    inc.data.set(c.data, c.offset)
    inc.received += c.data.length
    inc.lastProgress = now
    this.host.links()!.sendFrame(peer, encodeAck(c.index, inc.received, ACK_OK))
    if (inc.received < inc.data.length) return
    this.receiving.delete(peer)
    core.step({
      type: MessageType.Snapshot,
      from: peer,
      to: this.host.id,
      term: inc.term,
      index: inc.index,
      logTerm: inc.logTerm,
      entries: [],
      commit: 0,
      reject: false,
      hint: 0,
      context: 0,
      snapshot: { meta: { index: inc.index, term: inc.logTerm, conf: inc.conf }, data: inc.data },
    })
    this.host.schedule()
  }

  check(now: number): void {
    const limit = 2 * this.host.electionMaxMs
    const core = this.host.core()!
    for (const out of [...this.sending.values()]) {
      if (out.data === null && !core.sendingSnapshot(out.to)) this.sending.delete(out.to)
      else if (now - out.lastProgress > limit || core.role !== 'leader' || core.term !== out.term) {
        this.abort(out)
      }
    }
    for (const [peer, inc] of [...this.receiving])
      if (now - inc.lastProgress > limit) this.receiving.delete(peer)
  }
}
