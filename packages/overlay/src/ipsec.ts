import { randomBytes } from 'node:crypto'
import { OverlayError } from './errors.js'
import { execRunner } from './internal/exec.js'
import { formatIp, parseIp } from './internal/ip.js'
import type { NftRunner } from './kernel-mesh.js'

/** One key of an encrypted overlay: AES-128-GCM key and 4-byte salt (RFC 4106), and its tag. */
export interface EncryptionKey {
  /** 20 bytes: 16 of key, 4 of salt. */
  key: Uint8Array
  /** A number that only grows (a Lamport time): names the key on every node and goes into its SPIs. */
  tag: number
}

/** The keys the managers distribute to every node: newest first, at most 3. */
export interface KeyRing {
  keys: EncryptionKey[]
  /** When the newest key was made (ms since the epoch). */
  rotatedAt: number
}

/** Swarm rotates the data-path keys every 12 hours. */
export const KEY_ROTATION_MS = 12 * 60 * 60 * 1000
const KEEP = 3

/**
 * The key that sends: the second newest when there are two or more. A new key is only ever received with
 * for one rotation period before anybody sends with it, so every node has its inbound state installed by
 * the time the first packet sealed with it arrives (nodes get new rings at different moments).
 */
export function sendingKey(ring: KeyRing): EncryptionKey {
  checkRing(ring)
  return ring.keys[ring.keys.length > 1 ? 1 : 0]!
}

/** A first ring (manager side). */
export function newKeyRing(options: { now?: number; random?: (n: number) => Uint8Array } = {}): KeyRing {
  const random = options.random ?? ((n: number) => new Uint8Array(randomBytes(n)))
  return { keys: [{ key: checkKey(random(20)), tag: 1 }], rotatedAt: options.now ?? Date.now() }
}

/** The ring after one rotation: a fresh newest key, the oldest dropped beyond 3 (manager side). */
export function rotateKeyRing(
  ring: KeyRing,
  options: { now?: number; random?: (n: number) => Uint8Array } = {},
): KeyRing {
  checkRing(ring)
  const random = options.random ?? ((n: number) => new Uint8Array(randomBytes(n)))
  const next = { key: checkKey(random(20)), tag: ring.keys[0]!.tag + 1 }
  return { keys: [next, ...ring.keys].slice(0, KEEP), rotatedAt: options.now ?? Date.now() }
}

/** Whether the ring is due for rotation at `now`. */
export function rotationDue(ring: KeyRing, now: number, intervalMs = KEY_ROTATION_MS): boolean {
  checkRing(ring)
  return now - ring.rotatedAt >= intervalMs
}

/**
 * The SPI of traffic from `src` to `dst` sealed with key `tag`: the same on both ends without talking,
 * different per direction and per key, never in the reserved range 0-255.
 */
export function spiOf(src: string, dst: string, tag: number): number {
  let h = 0x811c9dc5
  for (const c of `${src}>${dst}#${tag}`) {
    h ^= c.charCodeAt(0)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return (h | 0x1000) >>> 0
}

/** What {@link ipsecPlan} needs: this node's and its peers' underlay addresses, the key ring and the encrypted VNIs. */
export interface IpsecPlanInput {
  /** This node's underlay address. */
  local: string
  /** The other nodes' underlay addresses that carry an encrypted network with this node. */
  peers: string[]
  ring: KeyRing
  /** VNIs of the encrypted networks (their VXLAN packets are marked and must travel sealed). */
  vnis: number[]
  /** xfrm reqid of everything this plane installs. Default 0x5c5c. */
  reqid?: number
  /** VXLAN UDP port. Default 4789. */
  port?: number
  /** Packet mark of encrypted VXLAN traffic. Default 0xd0c4e3 (Docker's). */
  mark?: number
  /** nftables table (family inet). Default `swarmkit_ipsec`. */
  table?: string
}

/** The kernel state encrypted overlays need on one node: xfrm states and policies and the nftables marking script. */
export interface IpsecPlan {
  /** `ip xfrm` states, as `ip -batch` lines keyed by `src>dst#spi`. */
  states: Map<string, string>
  /** `ip xfrm policy update` lines, one outbound policy per peer (sending with the sending key). */
  policies: Map<string, string>
  /** The nftables script: mark outgoing VXLAN of these VNIs; drop incoming VXLAN of them that was not sealed. */
  nft: string
}

/**
 * What the kernel must hold for these keys, peers and networks: per peer and key an outbound and an
 * inbound ESP state (transport mode, `rfc4106(gcm(aes))` with a 128-bit ICV), per peer an outbound policy
 * for marked VXLAN packets bound to the sending key's SPI, and the nftables marking and inbound check.
 */
export function ipsecPlan(input: IpsecPlanInput): IpsecPlan {
  const local = canon(input.local, 'input.local')
  checkRing(input.ring)
  if (!Array.isArray(input.peers) || !Array.isArray(input.vnis))
    throw new TypeError('input.peers and input.vnis must be arrays')
  const reqid = input.reqid ?? 0x5c5c
  const port = input.port ?? 4789
  const mark = input.mark ?? 0xd0c4e3
  const table = input.table ?? 'swarmkit_ipsec'
  if (!/^[a-z][a-z0-9_]{0,63}$/.test(table))
    throw new RangeError('input.table must be an nftables table name')
  for (const [name, v, max] of [
    ['reqid', reqid, 0xffffffff],
    ['port', port, 65535],
    ['mark', mark, 0xffffffff],
  ] as const)
    if (!Number.isInteger(v) || v < 1 || v > max)
      throw new RangeError(`input.${name} must be an integer in 1..${max}`)
  const vnis = [...new Set(input.vnis)].sort((a, b) => a - b)
  for (const v of vnis)
    if (!Number.isInteger(v) || v < 1 || v > 2 ** 24 - 1) throw new RangeError(`bad VNI ${v}`)
  const sending = sendingKey(input.ring)
  const states = new Map<string, string>()
  const policies = new Map<string, string>()
  const hex = (k: Uint8Array) => `0x${Buffer.from(k).toString('hex')}`
  const family = parseIp(input.local, 'input.local').family
  const host = family === 4 ? 32 : 128
  for (const [i, raw] of [...new Set(input.peers)].entries()) {
    const peer = canon(raw, `input.peers[${i}]`)
    if (peer === local) continue
    for (const k of input.ring.keys)
      for (const [src, dst] of [
        [local, peer],
        [peer, local],
      ] as const) {
        const spi = spiOf(src, dst, k.tag)
        states.set(
          `${src}>${dst}#${spi}`,
          `xfrm state add src ${src} dst ${dst} proto esp spi 0x${spi.toString(16)} reqid ${reqid} mode transport aead rfc4106(gcm(aes)) ${hex(k.key)} 128`,
        )
      }
    const spi = spiOf(local, peer, sending.tag)
    policies.set(
      peer,
      `xfrm policy update src ${local}/${host} dst ${peer}/${host} proto udp dport ${port} dir out mark 0x${mark.toString(16)} mask 0xffffffff tmpl src ${local} dst ${peer} proto esp spi 0x${spi.toString(16)} reqid ${reqid} mode transport`,
    )
  }
  const lines = [`table inet ${table} {}`, `delete table inet ${table}`]
  if (vnis.length > 0) {
    // The VNI is the 24 bits after the 8-byte UDP header's first 32 bits of VXLAN flags and reserved bytes.
    const set = `{ ${vnis.join(', ')} }`
    lines.push(
      `table inet ${table} {`,
      '  chain output {',
      '    type route hook output priority -150; policy accept;',
      `    udp dport ${port} @th,96,24 ${set} meta mark set 0x${mark.toString(16)}`,
      '  }',
      '  chain input {',
      '    type filter hook input priority -150; policy accept;',
      `    udp dport ${port} @th,96,24 ${set} meta secpath missing drop`,
      '  }',
      '}',
    )
  }
  return { states, policies, nft: `${lines.join('\n')}\n` }
}

/** Where an {@link ipsecDataPlane} installs its plans (a namespace) and how it runs commands. */
export interface IpsecDataPlaneOptions {
  /** Program this namespace (as `ip -n` / `ip netns exec`) instead of the current one. */
  namespace?: string
  /** Command runner (default: execFile). */
  exec?: NftRunner
}

/** The node side of encrypted overlays: installs an {@link ipsecPlan} and moves between plans without gaps. */
export interface IpsecDataPlane {
  /**
   * Brings the kernel to `input`: the outbound policies (switching the sending key) and the nftables
   * marking, then the new states, and last what is no longer wanted. Fails closed: where the states cannot
   * be made, marked traffic is dropped, not sent in clear.
   */
  apply(input: IpsecPlanInput, options?: { signal?: AbortSignal }): Promise<void>
  /** Removes every state, policy and table this plane installed. */
  clear(options?: { signal?: AbortSignal }): Promise<void>
}

class Ipsec implements IpsecDataPlane {
  private readonly run: NftRunner
  private states = new Map<string, string>()
  private policies = new Map<string, string>()
  private table = 'swarmkit_ipsec'

  constructor(private readonly o: IpsecDataPlaneOptions) {
    if (o.namespace !== undefined && !/^[\w.-]{1,64}$/.test(o.namespace))
      throw new TypeError('options.namespace must be a network namespace name')
    this.run = o.exec ?? execRunner(1 << 20)
  }

  async apply(input: IpsecPlanInput, options?: { signal?: AbortSignal }): Promise<void> {
    const plan = ipsecPlan(input)
    this.table = input.table ?? 'swarmkit_ipsec'
    const add = [...plan.states].filter(([k]) => !this.states.has(k)).map(([, v]) => v)
    const drop = [...this.states.keys()].filter((k) => !plan.states.has(k)).map(deleteState)
    const pol = [...plan.policies].filter(([k, v]) => this.policies.get(k) !== v).map(([, v]) => v)
    const dropPol = [...this.policies].filter(([k]) => !plan.policies.has(k)).map(([, v]) => deletePolicy(v))
    // Policies and marking first: a marked packet with no state for its policy is dropped, never sent in
    // clear, so a kernel that cannot make the states (or a failure half-way) fails closed. On rotation the
    // sending key's states were installed one rotation ago, so switching the policy first loses nothing.
    await this.batch(pol, options)
    await this.nft(plan.nft, options)
    this.policies = plan.policies
    await this.batch(add, options)
    for (const k of plan.states.keys()) if (!this.states.has(k)) this.states.set(k, plan.states.get(k)!)
    await this.batch([...dropPol, ...drop], options)
    this.states = plan.states
  }

  async clear(options?: { signal?: AbortSignal }): Promise<void> {
    await this.batch(
      [...[...this.policies.values()].map(deletePolicy), ...[...this.states.keys()].map(deleteState)],
      options,
    )
    await this.nft(`table inet ${this.table} {}\ndelete table inet ${this.table}\n`, options)
    this.states.clear()
    this.policies.clear()
  }

  private async batch(lines: string[], options?: { signal?: AbortSignal }): Promise<void> {
    if (lines.length === 0) return
    const args = [...(this.o.namespace === undefined ? [] : ['-n', this.o.namespace]), '-batch', '-']
    await this.exec('ip', args, `${lines.join('\n')}\n`, options)
  }

  private async nft(script: string, options?: { signal?: AbortSignal }): Promise<void> {
    const ns = this.o.namespace
    await this.exec(
      ns === undefined ? 'nft' : 'ip',
      ns === undefined ? ['-f', '-'] : ['netns', 'exec', ns, 'nft', '-f', '-'],
      script,
      options,
    )
  }

  private async exec(file: 'ip' | 'nft', args: string[], input: string, options?: { signal?: AbortSignal }) {
    options?.signal?.throwIfAborted()
    try {
      await this.run(file, args, {
        input,
        ...(options?.signal === undefined ? {} : { signal: options.signal }),
      })
    } catch (err) {
      const e = err as { stderr?: string; message?: string }
      const detail = String(e.stderr ?? e.message).trim()
      throw new OverlayError(
        /Requested (type|AEAD algorithm) not found|Protocol not supported/i.test(detail)
          ? 'UNSUPPORTED'
          : 'COMMAND_FAILED',
        /Requested (type|AEAD algorithm) not found/i.test(detail)
          ? `this kernel cannot seal overlay traffic: ESP with rfc4106(gcm(aes)) is not available (${detail.slice(0, 200)})`
          : `\`${file} ${args.join(' ')}\` failed: ${detail.slice(0, 400)}`,
        { cause: err },
      )
    }
  }
}

function deleteState(key: string): string {
  const [src, rest] = key.split('>') as [string, string]
  const [dst, spi] = rest.split('#') as [string, string]
  return `xfrm state delete src ${src} dst ${dst} proto esp spi 0x${Number(spi).toString(16)}`
}

function deletePolicy(line: string): string {
  const m = / src (\S+) dst (\S+) proto udp dport (\d+) dir out mark (\S+) mask (\S+) /.exec(line)!
  return `xfrm policy delete src ${m[1]} dst ${m[2]} proto udp dport ${m[3]} dir out mark ${m[4]} mask ${m[5]}`
}

function canon(a: string, name: string): string {
  const p = parseIp(a, name)
  return formatIp(p.family, p.value)
}

function checkKey(k: Uint8Array): Uint8Array {
  if (!(k instanceof Uint8Array) || k.length !== 20)
    throw new RangeError('a key must be 20 bytes (16 key, 4 salt)')
  return k
}

function checkRing(ring: KeyRing): void {
  if (typeof ring !== 'object' || ring === null || !Array.isArray(ring.keys) || ring.keys.length === 0)
    throw new TypeError('ring.keys must be a non-empty array')
  if (ring.keys.length > KEEP) throw new RangeError(`ring.keys holds at most ${KEEP} keys`)
  for (const [i, k] of ring.keys.entries()) {
    checkKey(k.key)
    if (!Number.isInteger(k.tag) || k.tag < 1 || k.tag > 0xffffffff)
      throw new RangeError(`ring.keys[${i}].tag must be a uint32 > 0`)
    if (i > 0 && k.tag >= ring.keys[i - 1]!.tag)
      throw new RangeError('ring.keys must be newest (highest tag) first')
  }
}

/**
 * IPsec for encrypted overlay networks (`--opt encrypted`), as Docker does it: ESP transport mode between
 * node underlay addresses, AES-GCM, for the VXLAN packets of those networks only; keys made and rotated by
 * the managers ({@link newKeyRing}, {@link rotateKeyRing}) and fed to each node's plane. Needs a kernel
 * with ESP and GCM (CONFIG_INET_ESP, CONFIG_CRYPTO_GCM): otherwise `apply` rejects with `UNSUPPORTED`.
 */
export function ipsecDataPlane(options: IpsecDataPlaneOptions = {}): IpsecDataPlane {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object')
  return new Ipsec(options)
}
