import { snapshotCase } from './snapshot.js'

snapshotCase('restart')
