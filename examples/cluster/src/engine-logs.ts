// An engine's container log stream (`GET /containers/{id}/logs?timestamps=1`) as log lines: multiplexed
// frames for containers without a TTY, raw bytes with one; each line starts with its RFC 3339 timestamp.

import { demultiplex } from './engine-client.js'
import type { LogLine } from './executor.js'

export function parseLogs(data: Buffer, tty: boolean): LogLine[] {
  const chunks = tty ? [{ stream: 'stdout' as const, payload: data }] : demultiplex(data)
  const out: LogLine[] = []
  // A frame is usually one line; a long line may span frames, and a frame may hold several lines.
  const partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' }
  for (const { stream, payload } of chunks) {
    const text = partial[stream] + payload.toString('utf8')
    const lines = text.split('\n')
    partial[stream] = lines.pop() ?? ''
    for (const line of lines) out.push(lineOf(line, stream))
  }
  for (const stream of ['stdout', 'stderr'] as const)
    if (partial[stream]) out.push(lineOf(partial[stream], stream))
  return out.sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0))
}

function lineOf(line: string, stream: 'stdout' | 'stderr'): LogLine {
  const cut = line.indexOf(' ')
  const stamp = cut > 0 ? line.slice(0, cut) : ''
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(stamp)
  // Nine fraction digits always, so that timestamps compare as strings.
  if (m)
    return {
      timestamp: `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}Z`,
      message: line.slice(cut + 1).replace(/\r$/, ''),
      stream,
    }
  return { timestamp: new Date().toISOString().replace('Z', '000000Z'), message: line, stream }
}
