// Fixed inputs made once with the openssl CLI (OpenSSL 3.0), so seeded suites replay bit for bit.

/** RFC 8410 section 10.3's Ed25519 private key. */
export const OPENSSL_KEY = `-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC
-----END PRIVATE KEY-----
`

/** openssl req -x509 -key OPENSSL_KEY -subj /O=o/OU=ou/CN=cn -days 3650 -set_serial 0x1234 -addext subjectAltName=DNS:a,IP:127.0.0.1 */
export const OPENSSL_CERT = `-----BEGIN CERTIFICATE-----
MIIBYzCCARWgAwIBAgICEjQwBQYDK2VwMCYxCjAIBgNVBAoMAW8xCzAJBgNVBAsM
Am91MQswCQYDVQQDDAJjbjAeFw0yNjExMjUxMDQyMTBaFw0zNjExMjIxMDQyMTBa
MCYxCjAIBgNVBAoMAW8xCzAJBgNVBAsMAm91MQswCQYDVQQDDAJjbjAqMAUGAytl
cAMhABm/RAlphM3+hUG6wWfcO5bIUIaqMLa2ywxcOK1wMWbho2cwZTAdBgNVHQ4E
FgQUoozB+G5ZYNPgOudcliyXqNRIKTwwHwYDVR0jBBgwFoAUoozB+G5ZYNPgOudc
liyXqNRIKTwwDwYDVR0TAQH/BAUwAwEB/zASBgNVHREECzAJggFhhwR/AAABMAUG
AytlcANBAAnNduAz8NjCF1/pcuDtdxMRimbe1dZ35WzPxce+7wH0NTLIOJOblC6q
sPJevnp22NHz2wKS+31wpBKjxlh8yQk=
-----END CERTIFICATE-----
`

/** openssl req -new -key OPENSSL_KEY -subj /CN=fixture */
export const OPENSSL_CSR = `-----BEGIN CERTIFICATE REQUEST-----
MIGRMEUCAQAwEjEQMA4GA1UEAwwHZml4dHVyZTAqMAUGAytlcAMhABm/RAlphM3+
hUG6wWfcO5bIUIaqMLa2ywxcOK1wMWbhoAAwBQYDK2VwA0EAt28zHHojmW5Icna4
Huw1QCq6Si1OEjngMKut31k2H8mfQJanLl7lpAAho9bco+isFen1BeIdaowxilTK
PkcwBg==
-----END CERTIFICATE REQUEST-----
`
