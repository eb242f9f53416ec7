// The Docker Engine version this reference cluster reports (`docker version`, node descriptions): one
// constant that the API, the daemon and the manager share without importing each other.

export const ENGINE_VERSION = '28.2.2'
