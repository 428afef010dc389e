/** The signed-in session of this tab: its tokens, their refresh, and signing out. */

import { logout, logoutAll, refreshTokens, type TokenPair } from "../client";
import { ApiError } from "../api/errors";

// The refresh token is kept in localStorage so that a reload or a new tab stays signed in.
// Script running in the page could read it, which is acceptable here because the page runs
// under a strict CSP (script-src 'self', no inline script, nothing from elsewhere), and the
// server rotates the token on each use and ends the whole session when a spent one comes back.
// The stronger alternative is a backend-for-frontend that holds the refresh token in an
// HttpOnly cookie, out of the page's reach. The access token stays in memory only.
export const REFRESH_TOKEN_KEY = "fastapi-starter.refresh-token";
export const REFRESH_LOCK = "fastapi-starter.refresh";

export type SessionStatus = "starting" | "signed-in" | "signed-out";

/** The subset of the Web Locks API used here; `navigator.locks` fits it. */
export interface Locks {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

export interface SessionDeps {
  storage: Pick<Storage, "getItem" | "setItem" | "removeItem">;
  /** Absent outside secure contexts and in old browsers: refreshes then run unlocked. */
  locks: Locks | undefined;
  /** Where other tabs' `storage` events arrive (the window). */
  tabEvents: Pick<EventTarget, "addEventListener">;
}

export type Session = ReturnType<typeof createSession>;

export function createSession({ storage, locks, tabEvents }: SessionDeps) {
  let status: SessionStatus = storage.getItem(REFRESH_TOKEN_KEY) === null ? "signed-out" : "starting";
  let accessToken: string | null = null;
  let refreshing: Promise<string | null> | null = null;
  let started: Promise<void> = Promise.resolve();
  const listeners = new Set<() => void>();

  function setStatus(next: SessionStatus): void {
    if (next === status) return;
    status = next;
    notify();
  }

  function notify(): void {
    for (const listener of listeners) listener();
  }

  /** Sign this tab out in memory, leaving storage to whoever changed it. */
  function forget(): void {
    accessToken = null;
    setStatus("signed-out");
  }

  function keep(pair: TokenPair): void {
    storage.setItem(REFRESH_TOKEN_KEY, pair.refresh_token);
    accessToken = pair.access_token;
  }

  /** Run `task` while no other tab of this origin refreshes or signs out. */
  function exclusively<T>(task: () => Promise<T>): Promise<T> {
    return locks ? locks.request(REFRESH_LOCK, task) : task();
  }

  async function rotate(): Promise<string | null> {
    for (;;) {
      // Read inside the lock: another tab may have spent the token this tab last saw, and the
      // server treats a spent token presented again as stolen (it ends the whole session).
      const sent = storage.getItem(REFRESH_TOKEN_KEY);
      if (sent === null) {
        forget();
        return null;
      }
      try {
        const pair = await refreshTokens({ body: { refresh_token: sent } });
        keep(pair);
        setStatus("signed-in");
        return pair.access_token;
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 401) throw error;
        // Without Web Locks another tab can rotate the token at the same moment; its successor
        // is then in storage and still good (the server's grace period answered this 401).
        if (storage.getItem(REFRESH_TOKEN_KEY) !== sent) continue;
        clear();
        return null;
      }
    }
  }

  /** Get a new access token; concurrent callers share one request. Null once signed out. */
  function refresh(): Promise<string | null> {
    refreshing ??= exclusively(rotate).finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  /** Sign this tab and every other one out locally (they see the token disappear). */
  function clear(): void {
    storage.removeItem(REFRESH_TOKEN_KEY);
    forget();
  }

  function onStorage(event: Event): void {
    if (!("key" in event) || !("newValue" in event)) return;
    // `key` is null when another tab cleared the whole storage.
    const ours = event.key === REFRESH_TOKEN_KEY || event.key === null;
    if (ours && event.newValue === null && status !== "signed-out") forget();
  }

  return {
    /** Listen to other tabs and, with a stored refresh token, get this tab's access token. */
    start(): void {
      tabEvents.addEventListener("storage", onStorage);
      if (status !== "starting") return;
      started = refresh().then(
        () => undefined,
        () => {
          // The API could not be reached: keep the refresh token and try again on the next call.
          setStatus("signed-in");
        },
      );
    },

    /** Resolves once the start-up refresh, if any, has settled. */
    whenStarted(): Promise<void> {
      return started;
    },

    getStatus(): SessionStatus {
      return status;
    },

    subscribe(listener: () => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    /** The bearer token for the next call, or undefined to call anonymously. */
    async accessToken(): Promise<string | undefined> {
      await started;
      if (accessToken !== null) return accessToken;
      if (status !== "signed-in") return undefined;
      return (await refresh()) ?? undefined;
    },

    /** After a 401 to `rejected`: a newer token, or null when the session has ended. */
    async renewAccessToken(rejected: string): Promise<string | null> {
      if (accessToken !== null && accessToken !== rejected) return accessToken;
      return refresh();
    },

    /** A new session from a login; listeners hear of it even over another, as the account may differ. */
    async signIn(pair: TokenPair): Promise<void> {
      // Under the lock: a refresh running in another tab would store its rotated token, of the
      // old session, over this one's.
      await exclusively(async () => keep(pair));
      status = "signed-in";
      notify();
    },

    clear,

    /** End this session at the server, then here; a failed call still signs the tab out. */
    async signOut(): Promise<void> {
      await exclusively(async () => {
        const token = storage.getItem(REFRESH_TOKEN_KEY);
        try {
          if (token !== null) await logout({ body: { refresh_token: token } });
        } catch {
          // Signing out of this browser must not depend on the API answering; the session
          // left behind at the server ends at its idle timeout.
        }
        clear();
      });
    },

    /** End every session of the account; throws, leaving this tab signed in, if the call fails. */
    async signOutEverywhere(): Promise<void> {
      await logoutAll();
      clear();
    },
  };
}
