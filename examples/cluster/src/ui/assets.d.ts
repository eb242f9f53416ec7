// The page's stylesheet is bundled by tsup (esbuild) next to the script: dist/ui/app.css.
declare module '*.css'
