import { snapshotCase } from './snapshot.js'

snapshotCase('pause')
