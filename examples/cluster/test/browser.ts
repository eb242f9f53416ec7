// Debian's Chromium driven by playwright-core, for the browser view's tests and bench.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { type Browser, chromium } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

/** Where tests leave screenshots (gitignored). */
export const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url))

/** Why browser tests cannot run here (CI must have Chromium: .ci/run installs it), or undefined. */
export function missingBrowser(): string | undefined {
  if (existsSync(CHROMIUM)) return undefined
  const why = `${CHROMIUM} is missing (apt-get install chromium)`
  if (process.env.SWARMKIT_CI) throw new Error(`browser tests need Chromium in CI: ${why}`)
  return why
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: 60_000 })
}
