/// <reference lib="dom" />
// Small DOM helpers: elements are built with textContent only (names come from users: never parsed as HTML).

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v
    else e.setAttribute(k, v)
  }
  e.append(...children)
  return e
}

/** Sets a text only when it changed (a write to the DOM costs style and layout work even when equal). */
export function setText(e: Element, text: string): void {
  if (e.textContent !== text) e.textContent = text
}

export function setAttr(e: Element, name: string, value: string | null): void {
  if (value === null) {
    if (e.hasAttribute(name)) e.removeAttribute(name)
  } else if (e.getAttribute(name) !== value) e.setAttribute(name, value)
}

/** A stable hue per service, so that its cards share a colour on every node. */
export function hueOf(id: string): number {
  let h = 2166136261
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619)
  return (h >>> 0) % 360
}

/** `registry:5000/nginx:alpine@sha256:…` → `alpine`; no tag → `latest`. */
export function imageTag(image: string): string {
  const noDigest = image.split('@')[0]!
  const slash = noDigest.lastIndexOf('/')
  const colon = noDigest.lastIndexOf(':')
  return colon > slash ? noDigest.slice(colon + 1) : 'latest'
}
