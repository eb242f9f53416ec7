// meta.json: what a log directory was created for (format version, node, cluster, sealed or not), checked on
// every open so that a directory is never used by the wrong member or with the wrong hooks.
import { Buffer } from 'node:buffer'
import { join } from 'node:path'
import { RaftError } from '../../errors.js'
import type { FileLogStorageOptions } from '../../file-storage-options.js'
import { type FileSystem, readWhole, writeAtomic } from '../../file-system.js'

export const META = 'meta.json'
const META_FORMAT = 'swarmkit-raft-log'
const MAX_META_BYTES = 64 * 1024

/**
 * Checks (and completes, or writes on first open) the directory's meta.json: the format, and the node, cluster
 * and sealing it was recorded for.
 */
export async function checkMeta(
  files: FileSystem,
  dir: string,
  options: FileLogStorageOptions,
  exists: boolean,
  hasSegments: boolean,
): Promise<void> {
  const path = join(dir, META)
  let meta: Record<string, unknown> = {
    format: META_FORMAT,
    version: 1,
    sealed: options.seal !== undefined,
  }
  let changed = !exists
  if (exists) {
    const size = await files.size(path)
    if (size > MAX_META_BYTES) throw new RaftError('CORRUPT', `${path}: ${size} bytes is over the limit`)
    try {
      meta = JSON.parse((await readWhole(files, path)).toString('utf8'))
    } catch (e) {
      throw new RaftError('CORRUPT', `${path}: not valid JSON`, { cause: e })
    }
    if (
      typeof meta !== 'object' ||
      meta === null ||
      meta['format'] !== META_FORMAT ||
      meta['version'] !== 1
    ) {
      throw new RaftError('STORAGE_MISMATCH', `${path}: not a swarmkit raft log (or an unsupported version)`)
    }
  } else if (hasSegments) {
    throw new RaftError('CORRUPT', `${path} is missing from a directory that holds log segments`)
  }
  for (const key of ['nodeId', 'clusterId'] as const) {
    const want = options[key]
    const have = meta[key]
    if (want === undefined) continue
    if (have === undefined) {
      meta[key] = want
      changed = true
    } else if (have !== want) {
      const what = key === 'nodeId' ? 'node' : 'cluster'
      throw new RaftError(
        'STORAGE_MISMATCH',
        `${dir} belongs to ${what} ${JSON.stringify(have)}, not ${JSON.stringify(want)}`,
      )
    }
  }
  if (meta['sealed'] !== (options.seal !== undefined)) {
    throw new RaftError(
      'STORAGE_MISMATCH',
      meta['sealed']
        ? `${dir} holds a sealed log: open it with the seal and open hooks`
        : `${dir} holds a log that is not sealed: it cannot be opened with seal hooks`,
    )
  }
  if (changed) await writeAtomic(files, dir, META, Buffer.from(JSON.stringify(meta)))
}
