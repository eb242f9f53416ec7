import { defineConfig } from 'tsup'

export default defineConfig([
  {
    entry: ['src/index.ts', 'src/cli.ts'],
    format: ['esm'],
    target: 'node20',
    dts: { entry: 'src/index.ts', compilerOptions: { ignoreDeprecations: '6.0' } },
    sourcemap: true,
    // dist/ui/ is the browser build's (below), which runs at the same time.
    clean: ['!ui/**'],
  },
  {
    // The browser view: plain TypeScript and CSS bundled into dist/ui/app.js and app.css, served by every
    // manager under /ui/ (no framework, nothing fetched at run time).
    entry: { app: 'src/ui/page.ts' },
    outDir: 'dist/ui',
    format: ['iife'],
    platform: 'browser',
    target: 'es2022',
    minify: true,
    outExtension: () => ({ js: '.js' }),
    sourcemap: false,
    clean: true,
  },
])
