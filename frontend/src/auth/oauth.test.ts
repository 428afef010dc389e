/** The one-time code of a provider sign-in is sent once, however often the page asks. */

import { afterEach, expect, it, vi } from "vitest";

import { configureApiClient } from "../api/client";
import { exchangeCodeOnce } from "./oauth";
import { createSession, REFRESH_TOKEN_KEY } from "./session";

afterEach(() => {
  vi.unstubAllGlobals();
});

it("exchanges a code once, as React's StrictMode runs the effect twice", async () => {
  const pair = { access_token: "access", refresh_token: "refresh", token_type: "bearer", expires_in: 900 };
  const fetch = vi.fn(
    async () => new Response(JSON.stringify(pair), { headers: { "Content-Type": "application/json" } }),
  );
  vi.stubGlobal("fetch", fetch);
  const items = new Map<string, string>();
  const session = createSession({
    storage: {
      getItem: (key) => items.get(key) ?? null,
      setItem: (key, value) => void items.set(key, value),
      removeItem: (key) => void items.delete(key),
    },
    locks: undefined,
    tabEvents: new EventTarget(),
  });
  configureApiClient(session, "http://api.test");

  await Promise.all([exchangeCodeOnce(session, "code-1"), exchangeCodeOnce(session, "code-1")]);

  expect(fetch).toHaveBeenCalledOnce();
  expect(items.get(REFRESH_TOKEN_KEY)).toBe("refresh");
  expect(await session.accessToken()).toBe("access");
});
