import { snapshotCase } from './snapshot.js'

snapshotCase('join')
