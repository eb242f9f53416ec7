import { MemoryLogStorage } from '../src/index.js'
import { testLogStorage } from '../src/testing/index.js'

testLogStorage('MemoryLogStorage', {
  create: async () => new MemoryLogStorage(),
  reopen: async (closed) => closed,
})
