/** safeRedirect keeps sign-in from sending the browser to another site. */

import { describe, expect, it } from "vitest";

import { safeRedirect } from "./redirect";

describe("safeRedirect", () => {
  it.each(["/", "/posts/3", "/?search=a%20b&offset=20", "/account#sessions"])("keeps the path %s", (path) => {
    expect(safeRedirect(path)).toBe(path);
  });

  it.each([
    undefined,
    42,
    "",
    "posts",
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "/\t/evil.example/",
    "/..//evil.example/",
    "/.//evil.example/",
    "/%2e%2e//evil.example/",
    "javascript:alert(1)",
  ])("refuses %j", (value) => {
    expect(safeRedirect(value)).toBeUndefined();
  });
});
