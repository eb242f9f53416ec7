#!/usr/bin/env node
// Runs the walkthrough and prints each step.
import { runWalkthrough } from './walkthrough.js'

runWalkthrough((line) => console.log(line)).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err)
    process.exit(1)
  },
)
