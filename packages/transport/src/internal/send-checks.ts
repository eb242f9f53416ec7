// What every connection checks before it queues a frame, in one place so that the memory, TCP and TLS
// connections refuse the same frames with the same errors (the compliance suite holds them to it).
import { TransportError } from '../errors.js'
import { checkFrame } from './limits.js'

/** Checks a frame to send: a Uint8Array (TypeError), an open connection, within the frame limit. Its size. */
export function checkSend(frame: unknown, closed: boolean, maxFrameBytes: number): number {
  checkFrame(frame)
  if (closed) throw new TransportError('CLOSED', 'connection is closed')
  const n = frame.byteLength
  if (n > maxFrameBytes) {
    throw new TransportError('FRAME_TOO_LARGE', `frame of ${n} bytes is over the limit of ${maxFrameBytes}`)
  }
  return n
}

/** The error of a send that would queue more than `maxBufferedBytes` for `remoteAddress`. */
export function bufferOverflow(maxBufferedBytes: number, remoteAddress: string): TransportError {
  return new TransportError(
    'BUFFER_OVERFLOW',
    `more than ${maxBufferedBytes} bytes queued for ${remoteAddress}`,
  )
}
