/** The session's token handling against a fake API behind a stubbed fetch. */

import { afterEach, describe, expect, it, vi } from "vitest";

import { configureApiClient } from "../api/client";
import { ApiError } from "../api/errors";
import { listSessions, login, readCurrentUser } from "../client";
import { createSession, REFRESH_LOCK, REFRESH_TOKEN_KEY, type Locks, type Session } from "./session";

const API = "http://api.test";

class MemoryStorage {
  private readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

/** One lock per name, granted in request order, like `navigator.locks` across tabs. */
class FakeLocks implements Locks {
  readonly requested: string[] = [];
  private tail: Promise<unknown> = Promise.resolve();
  request<T>(name: string, callback: () => Promise<T>): Promise<T> {
    this.requested.push(name);
    const run = this.tail.then(callback);
    this.tail = run.catch(() => undefined);
    return run;
  }
}

function answer(status: number, body: unknown): Response {
  const type = status < 400 ? "application/json" : "application/problem+json";
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": type } });
}

function problem(status: number, errorCode: string, detail: string): Response {
  return answer(status, {
    type: `urn:problem-type:${errorCode}`,
    title: "Error",
    status,
    detail,
    instance: "/",
    error_code: errorCode,
  });
}

/** The API's token rules: each refresh token works once, access tokens until expired. */
class FakeApi {
  readonly refreshTokensSent: string[] = [];
  readonly bearersSent: string[] = [];
  readonly logoutTokensSent: string[] = [];
  private readonly liveAccess = new Set<string>();
  private readonly liveRefresh = new Set<string>();
  private issued = 0;

  /** A session as a login starts it; returns the stored refresh token. */
  login(): string {
    this.issued += 1;
    this.liveRefresh.add(`refresh-${this.issued}`);
    return `refresh-${this.issued}`;
  }

  expireAccessTokens(): void {
    this.liveAccess.clear();
  }

  endSessions(): void {
    this.liveAccess.clear();
    this.liveRefresh.clear();
  }

  readonly fetch = vi.fn(async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    if (path === "/api/v1/auth/refresh") return this.refresh(request);
    if (path === "/api/v1/auth/logout") {
      const { refresh_token } = (await request.json()) as { refresh_token: string };
      this.logoutTokensSent.push(refresh_token);
      this.liveRefresh.delete(refresh_token);
      return new Response(null, { status: 204 });
    }
    if (path === "/api/v1/login")
      return problem(401, "invalid_credentials", "The email or password is wrong.");

    const bearer = request.headers.get("Authorization")?.replace("Bearer ", "") ?? "";
    this.bearersSent.push(bearer);
    if (!this.liveAccess.has(bearer)) return problem(401, "invalid_token", "The access token is invalid.");
    if (path === "/api/v1/users/me") {
      return answer(200, {
        id: 1,
        email: "ada@example.com",
        email_verified: false,
        created_at: "2025-01-01T00:00:00Z",
      });
    }
    if (path === "/api/v1/auth/sessions") return answer(200, []);
    return problem(404, "not_found", "Not found.");
  });

  private async refresh(request: Request): Promise<Response> {
    const { refresh_token } = (await request.json()) as { refresh_token: string };
    this.refreshTokensSent.push(refresh_token);
    if (!this.liveRefresh.delete(refresh_token)) {
      return problem(401, "refresh_token_reused", "The refresh token was already used.");
    }
    this.issued += 1;
    const pair = {
      access_token: `access-${this.issued}`,
      refresh_token: `refresh-${this.issued}`,
      token_type: "bearer",
      expires_in: 900,
    };
    this.liveAccess.add(pair.access_token);
    this.liveRefresh.add(pair.refresh_token);
    return answer(200, pair);
  }
}

interface Tab {
  session: Session;
  events: EventTarget;
}

function openTab(storage: MemoryStorage, locks: Locks | undefined): Tab {
  const events = new EventTarget();
  const session = createSession({ storage, locks, tabEvents: events });
  session.start();
  return { session, events };
}

/** A signed-in tab (started from a stored refresh token) whose API calls go to `api`. */
async function signedInTab(locks: Locks | undefined = new FakeLocks()) {
  const api = new FakeApi();
  vi.stubGlobal("fetch", api.fetch);
  const storage = new MemoryStorage();
  storage.setItem(REFRESH_TOKEN_KEY, api.login());
  const tab = openTab(storage, locks);
  configureApiClient(tab.session, API);
  await tab.session.whenStarted();
  return { api, storage, ...tab };
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("start-up", () => {
  it("refreshes once with the stored token and stores the rotated one", async () => {
    const { api, storage, session } = await signedInTab();

    expect(api.refreshTokensSent).toEqual(["refresh-1"]);
    expect(storage.getItem(REFRESH_TOKEN_KEY)).toBe("refresh-2");
    expect(session.getStatus()).toBe("signed-in");
    expect(await session.accessToken()).toBe("access-2");
  });

  it("is signed out without a stored token and calls anonymously", async () => {
    const session = createSession({
      storage: new MemoryStorage(),
      locks: undefined,
      tabEvents: new EventTarget(),
    });
    session.start();

    expect(session.getStatus()).toBe("signed-out");
    expect(await session.accessToken()).toBeUndefined();
  });

  it("keeps the stored token when the API cannot be reached", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(() => Promise.reject(new TypeError("Failed to fetch"))),
    );
    const storage = new MemoryStorage();
    storage.setItem(REFRESH_TOKEN_KEY, "refresh-1");
    const { session } = openTab(storage, undefined);
    configureApiClient(session, API);
    await session.whenStarted();

    expect(storage.getItem(REFRESH_TOKEN_KEY)).toBe("refresh-1");
    expect(session.getStatus()).toBe("signed-in");
  });
});

describe("a 401 on an authenticated call", () => {
  it("refreshes and retries the call with the new access token", async () => {
    const { api } = await signedInTab();
    api.expireAccessTokens();

    const user = await readCurrentUser();

    expect(user.email).toBe("ada@example.com");
    expect(api.bearersSent).toEqual(["access-2", "access-3"]);
    expect(api.refreshTokensSent).toEqual(["refresh-1", "refresh-2"]);
  });

  it("shares one refresh between concurrent calls", async () => {
    const { api, storage } = await signedInTab();
    api.expireAccessTokens();

    await Promise.all([readCurrentUser(), listSessions(), readCurrentUser()]);

    expect(api.refreshTokensSent).toEqual(["refresh-1", "refresh-2"]);
    expect(api.bearersSent.slice(3)).toEqual(["access-3", "access-3", "access-3"]);
    expect(storage.getItem(REFRESH_TOKEN_KEY)).toBe("refresh-3");
  });

  it("shares the lock with other tabs", async () => {
    const locks = new FakeLocks();
    const { api } = await signedInTab(locks);
    api.expireAccessTokens();

    await readCurrentUser();

    expect(locks.requested).toEqual([REFRESH_LOCK, REFRESH_LOCK]);
  });

  it("signs the tab out when the refresh is refused", async () => {
    const { api, storage, session } = await signedInTab();
    const changes = vi.fn();
    session.subscribe(changes);
    api.endSessions();

    const failure = await readCurrentUser().catch((error: unknown) => error);

    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).errorCode).toBe("invalid_token");
    expect(storage.getItem(REFRESH_TOKEN_KEY)).toBeNull();
    expect(session.getStatus()).toBe("signed-out");
    expect(changes).toHaveBeenCalledOnce();
    expect(await session.accessToken()).toBeUndefined();
  });

  it("works without Web Locks", async () => {
    const { api } = await signedInTab(undefined);
    api.expireAccessTokens();

    await expect(readCurrentUser()).resolves.toMatchObject({ id: 1 });
    expect(api.refreshTokensSent).toEqual(["refresh-1", "refresh-2"]);
  });
});

it("passes an anonymous call's 401 through without refreshing", async () => {
  const { api } = await signedInTab();

  await expect(login({ body: { username: "ada@example.com", password: "wrong" } })).rejects.toMatchObject({
    status: 401,
    message: "The email or password is wrong.",
  });
  expect(api.refreshTokensSent).toEqual(["refresh-1"]);
});

describe("several tabs", () => {
  it("never present a refresh token another tab has spent", async () => {
    const { api, storage } = await signedInTab();
    const locks = new FakeLocks();
    // Two more tabs open at once from the same stored token.
    const second = openTab(storage, locks);
    const third = openTab(storage, locks);
    await Promise.all([second.session.whenStarted(), third.session.whenStarted()]);

    expect(api.refreshTokensSent).toEqual(["refresh-1", "refresh-2", "refresh-3"]);
    expect(second.session.getStatus()).toBe("signed-in");
    expect(third.session.getStatus()).toBe("signed-in");
    expect(storage.getItem(REFRESH_TOKEN_KEY)).toBe("refresh-4");
  });

  it("re-reads the stored token once the lock is granted", async () => {
    const { api, storage } = await signedInTab();
    // Once this tab has signed in, another tab holds the lock and rotates the token while
    // this tab waits for it.
    let requests = 0;
    const locks: Locks = {
      async request(_name, callback) {
        requests += 1;
        if (requests > 1) {
          const otherTab = createSession({ storage, locks: undefined, tabEvents: new EventTarget() });
          otherTab.start();
          await otherTab.whenStarted();
        }
        return callback();
      },
    };
    const tab = createSession({ storage, locks, tabEvents: new EventTarget() });
    configureApiClient(tab, API);
    await tab.signIn({
      access_token: "access-expired",
      refresh_token: "refresh-2",
      token_type: "bearer",
      expires_in: 900,
    });

    await readCurrentUser();

    expect(api.refreshTokensSent).toEqual(["refresh-1", "refresh-2", "refresh-3"]);
    expect(api.bearersSent).toEqual(["access-expired", "access-4"]);
    expect(storage.getItem(REFRESH_TOKEN_KEY)).toBe("refresh-4");
  });

  it("signs this tab out when another one removes the token", async () => {
    const { storage, session, events } = await signedInTab();

    storage.removeItem(REFRESH_TOKEN_KEY);
    events.dispatchEvent(Object.assign(new Event("storage"), { key: REFRESH_TOKEN_KEY, newValue: null }));

    expect(session.getStatus()).toBe("signed-out");
    expect(await session.accessToken()).toBeUndefined();
  });

  it("ignores another tab's rotation", async () => {
    const { session, events } = await signedInTab();

    events.dispatchEvent(
      Object.assign(new Event("storage"), { key: REFRESH_TOKEN_KEY, newValue: "refresh-9" }),
    );

    expect(session.getStatus()).toBe("signed-in");
  });
});

describe("signing in", () => {
  it("waits for another tab's refresh, so the new session's token is the one stored", async () => {
    const api = new FakeApi();
    vi.stubGlobal("fetch", api.fetch);
    const storage = new MemoryStorage();
    storage.setItem(REFRESH_TOKEN_KEY, api.login());
    const locks = new FakeLocks();
    const refreshingTab = createSession({ storage, locks, tabEvents: new EventTarget() });
    configureApiClient(refreshingTab, API);
    refreshingTab.start(); // its start-up refresh is in flight
    const signingInTab = createSession({ storage, locks, tabEvents: new EventTarget() });

    await signingInTab.signIn({
      access_token: "access-new",
      refresh_token: "refresh-new",
      token_type: "bearer",
      expires_in: 900,
    });
    await refreshingTab.whenStarted();

    expect(api.refreshTokensSent).toEqual(["refresh-1"]);
    expect(storage.getItem(REFRESH_TOKEN_KEY)).toBe("refresh-new");
    expect(signingInTab.getStatus()).toBe("signed-in");
  });
});

describe("signing out", () => {
  it("ends the session at the server with the stored token, then forgets it", async () => {
    const { api, storage, session } = await signedInTab();

    await session.signOut();

    expect(api.logoutTokensSent).toEqual(["refresh-2"]);
    expect(storage.getItem(REFRESH_TOKEN_KEY)).toBeNull();
    expect(session.getStatus()).toBe("signed-out");
  });

  it("signs the tab out even when the API cannot be reached", async () => {
    const { storage, session } = await signedInTab();
    vi.stubGlobal(
      "fetch",
      vi.fn(() => Promise.reject(new TypeError("Failed to fetch"))),
    );

    await session.signOut();

    expect(storage.getItem(REFRESH_TOKEN_KEY)).toBeNull();
    expect(session.getStatus()).toBe("signed-out");
  });
});
