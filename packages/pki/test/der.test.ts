import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isPkiError, type PkiErrorCode, parseCertificate, parseCertificates, parseCSR } from '../src/index.js'
import { type DerNode, decodeDer, readOid, readTime, readUnsignedInteger, tlv } from '../src/internal/der.js'
import { decodePem } from '../src/internal/pem.js'

const b = (...x: number[]) => Uint8Array.from(x)
const hex = (h: string) => Uint8Array.from(Buffer.from(h.replace(/\s/g, ''), 'hex'))

function codeOf(fn: () => unknown): PkiErrorCode | 'ok' {
  try {
    fn()
    return 'ok'
  } catch (err) {
    if (isPkiError(err)) return err.code
    throw err
  }
}

/** Re-encodes a decoded tree; for strict DER this gives back the input exactly. */
export function reencode(n: DerNode): Uint8Array {
  return n.children ? tlv(n.tag, ...n.children.map(reencode)) : tlv(n.tag, n.value)
}

describe('decodeDer', () => {
  it('decodes nested values', () => {
    const n = decodeDer(hex('30 06 02 01 05 04 01 ff'))
    expect(n.tag).toBe(0x30)
    expect(n.children!.map((c) => c.tag)).toEqual([0x02, 0x04])
  })

  it('refuses what DER forbids or what does not fit', () => {
    const cases: [string, string][] = [
      ['', 'empty'],
      ['30', 'truncated header'],
      ['30 80 00 00', 'indefinite length'],
      ['04 81 05 0102030405', 'non-minimal long form'],
      ['04 82 00 85' + '00'.repeat(0x85), 'leading zero length octet'],
      ['04 85 0000000001 00', 'length of 5 octets'],
      ['04 05 0102', 'overrun'],
      ['30 03 04 05 00', 'child overruns parent'],
      ['04 01 00 00', 'trailing byte'],
      ['1f 01 00', 'high tag number'],
    ]
    for (const [h, why] of cases)
      expect(
        codeOf(() => decodeDer(hex(h))),
        why,
      ).toBe('MALFORMED_DER')
  })

  it('limits size and depth without recursing without bound', () => {
    expect(codeOf(() => decodeDer(new Uint8Array(70_000)))).toBe('TOO_LARGE')
    let deep: Uint8Array = b(0x05, 0x00)
    for (let i = 0; i < 5000; i++) deep = tlv(0x30, deep)
    expect(codeOf(() => decodeDer(deep, { maxSize: 1 << 20 }))).toBe('MALFORMED_DER')
    let ok: Uint8Array = b(0x05, 0x00)
    for (let i = 0; i < 10; i++) ok = tlv(0x30, ok)
    expect(codeOf(() => decodeDer(ok))).toBe('ok')
  })

  it('round-trips any tree it accepts to the same bytes (property)', () => {
    const leaf = fc.record({
      tag: fc.constantFrom(0x02, 0x04, 0x05, 0x0c, 0x80, 0x81),
      value: fc.uint8Array({ maxLength: 300 }),
    })
    const tree: fc.Arbitrary<Uint8Array> = fc.letrec<{ node: Uint8Array }>((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        leaf.map((l) => tlv(l.tag, l.value)),
        fc
          .tuple(fc.constantFrom(0x30, 0x31, 0xa0, 0xa3), fc.array(tie('node'), { maxLength: 4 }))
          .map(([t, cs]) => tlv(t, ...cs)),
      ),
    })).node
    fc.assert(
      fc.property(tree, (der) => {
        const n = decodeDer(der, { maxSize: 1 << 20 })
        expect(Buffer.compare(reencode(n), der)).toBe(0)
      }),
      { seed: 17, numRuns: 500 },
    )
  })

  it('reads INTEGERs, OIDs and times strictly', () => {
    const node = (h: string) => decodeDer(hex(h))
    expect(codeOf(() => readUnsignedInteger(node('02 02 00 7f'), 'i'))).toBe('MALFORMED_DER')
    expect(codeOf(() => readUnsignedInteger(node('02 01 80'), 'i'))).toBe('MALFORMED_DER')
    expect(codeOf(() => readUnsignedInteger(node('02 00'), 'i'))).toBe('MALFORMED_DER')
    expect(Buffer.from(readUnsignedInteger(node('02 02 00 80'), 'i')).toString('hex')).toBe('80')
    expect(readOid(node('06 03 2b 65 70'), 'o')).toBe('1.3.101.112')
    expect(codeOf(() => readOid(node('06 03 2b 80 70'), 'o'))).toBe('MALFORMED_DER')
    expect(codeOf(() => readOid(node('06 02 2b 85'), 'o'))).toBe('MALFORMED_DER')
    const t = (s: string, tag = 0x17) => decodeDer(tlv(tag, new TextEncoder().encode(s)))
    expect(readTime(t('491231235959Z'), 't').toISOString()).toBe('2049-12-31T23:59:59.000Z')
    expect(readTime(t('500101000000Z'), 't').toISOString()).toBe('1950-01-01T00:00:00.000Z')
    expect(readTime(t('20500101000000Z', 0x18), 't').toISOString()).toBe('2050-01-01T00:00:00.000Z')
    for (const bad of [
      '4912312359Z',
      '491231235959+0000',
      '490230000000Z',
      '491231246000Z',
      '4912312359590Z',
    ]) {
      expect(
        codeOf(() => readTime(t(bad), 't')),
        bad,
      ).toBe('MALFORMED_DER')
    }
  })
})

describe('PEM', () => {
  it('refuses malformed PEM with a code', () => {
    const body = 'MAMCAQA='
    const cases: [string, PkiErrorCode][] = [
      ['', 'MALFORMED_PEM'],
      ['just text', 'MALFORMED_PEM'],
      [`-----BEGIN CERTIFICATE-----\n${body}\n`, 'MALFORMED_PEM'],
      [`-----BEGIN CERTIFICATE-----\n${body}\n-----END KEY-----\n`, 'MALFORMED_PEM'],
      ['-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n', 'MALFORMED_PEM'],
      ['-----BEGIN CERTIFICATE-----\nMAMC*QA=\n-----END CERTIFICATE-----\n', 'MALFORMED_PEM'],
      ['-----BEGIN CERTIFICATE-----\nMAMCAQA\n-----END CERTIFICATE-----\n', 'MALFORMED_PEM'],
      ['-----BEGIN CERTIFICATE-----\nMAMCAQB=\n-----END CERTIFICATE-----\n', 'MALFORMED_PEM'],
      ['-----BEGIN CERTIFICATE-----\nProc-Type: 4\n-----END CERTIFICATE-----\n', 'MALFORMED_PEM'],
      ['-----END CERTIFICATE-----\n', 'MALFORMED_PEM'],
      [`-----BEGIN CERTIFICATE-----\n${'A'.repeat(300_000)}\n-----END CERTIFICATE-----\n`, 'TOO_LARGE'],
    ]
    for (const [text, code] of cases)
      expect(
        codeOf(() => decodePem(text)),
        JSON.stringify(text.slice(0, 60)),
      ).toBe(code)
    expect(codeOf(() => decodePem(`-----BEGIN X-----\n${body}\n-----END X-----\n`.repeat(17)))).toBe(
      'TOO_LARGE',
    )
  })

  it('accepts CRLF, surrounding text and wrapped lines', () => {
    const text = `comment\r\n-----BEGIN THING-----\r\nMAMC\r\nAQA=\r\n-----END THING-----\r\ntrailer`
    const [blk] = decodePem(text)
    expect(blk!.label).toBe('THING')
    expect(Buffer.from(blk!.der).toString('hex')).toBe('3003020100')
  })

  it('gives certificate and CSR parsers a code for every malformed input kind', () => {
    expect(
      codeOf(() => parseCertificate('-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n')),
    ).toBe('MALFORMED_CERTIFICATE')
    expect(codeOf(() => parseCertificate(hex('30 00')))).toBe('MALFORMED_CERTIFICATE')
    expect(codeOf(() => parseCertificate(hex('30 80')))).toBe('MALFORMED_CERTIFICATE')
    expect(
      codeOf(() => parseCertificate('-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n')),
    ).toBe('MALFORMED_PEM')
    expect(codeOf(() => parseCertificates(''))).toBe('MALFORMED_PEM')
    expect(codeOf(() => parseCSR(hex('30 03 02 01 00')))).toBe('MALFORMED_CSR')
    expect(
      codeOf(() =>
        parseCSR('-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n'),
      ),
    ).toBe('MALFORMED_CSR')
    expect(() => parseCertificate(42 as never)).toThrow(TypeError)
  })
})
