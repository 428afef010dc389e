/** Where a sign-in may send the browser next: a path on this origin, never another site. */

// Any origin will do: only whether the parsed URL stays on it matters.
const BASE = "https://frontend.invalid";

// "//host" and "/\host" are URLs of other origins that merely start with a slash.
const LOCAL_PATH = /^\/(?![/\\])/;

export function safeRedirect(value: unknown): string | undefined {
  if (typeof value !== "string" || !LOCAL_PATH.test(value)) return undefined;
  // Parsing drops the tabs and newlines that could hide such a prefix ("/\t/host"), and
  // resolves dot segments, which can make one ("/..//host" is the path "//host").
  const url = new URL(value, BASE);
  const path = url.pathname + url.search + url.hash;
  return url.origin === BASE && LOCAL_PATH.test(path) ? path : undefined;
}
