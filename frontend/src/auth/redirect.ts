/** Where a sign-in may send the browser next: a path on this origin, never another site. */

// Any origin will do: only whether the parsed URL stays on it matters.
const BASE = "https://frontend.invalid";

export function safeRedirect(value: unknown): string | undefined {
  // "//host" and "/\host" are URLs of other origins that merely start with a slash.
  if (typeof value !== "string" || !/^\/(?![/\\])/.test(value)) return undefined;
  // Parsing also drops the tabs and newlines that could hide such a prefix ("/\t/host").
  const url = new URL(value, BASE);
  return url.origin === BASE ? url.pathname + url.search + url.hash : undefined;
}
