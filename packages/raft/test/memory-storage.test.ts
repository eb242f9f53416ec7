import { MemoryLogStorage } from '../src/index.js'
import { logStorageCompliance } from '../src/testing/index.js'

logStorageCompliance('MemoryLogStorage', {
  create: async () => new MemoryLogStorage(),
  reopen: async (closed) => closed,
})
