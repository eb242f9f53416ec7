// The build every swarmkit package shares, in one place instead of a copy per package: ESM for Node 20 with
// declarations and source maps. vitest stays external: only the `testing` entry points import it, as an
// optional peer. Each package's tsup.config.ts names its entry points and calls packageBuild.
import { defineConfig, type Options } from 'tsup'

/**
 * The tsup config of a package whose entry points are `entry`. `dtsEntry` limits declarations to some of them
 * (a command-line entry needs none).
 */
export function packageBuild(entry: string[], dtsEntry?: string): Options {
  return defineConfig({
    entry,
    format: ['esm'],
    target: 'node20',
    dts: {
      ...(dtsEntry === undefined ? {} : { entry: dtsEntry }),
      compilerOptions: { ignoreDeprecations: '6.0' },
    },
    sourcemap: true,
    clean: true,
    external: ['vitest'],
  }) as Options
}
