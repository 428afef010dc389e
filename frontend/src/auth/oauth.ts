/** The browser's side of sign-in with a provider: where to start, and the code's exchange. */

import { API_BASE_URL } from "../api/client";
import { exchangeOauthCode } from "../client";
import type { Session } from "./session";

/** Where the API sends the browser back at the end of a provider's flow. */
export function oauthCallbackUrl(): string {
  return `${window.location.origin}/auth/callback`;
}

/** A navigation, not a fetch: the API answers with a redirect to the provider. */
export function oauthSignInUrl(provider: string): string {
  const redirectTo = encodeURIComponent(oauthCallbackUrl());
  return `${API_BASE_URL}/api/v1/auth/oauth/${encodeURIComponent(provider)}/start?redirect_to=${redirectTo}`;
}

const exchanges = new Map<string, Promise<void>>();

/**
 * Trade the one-time code for a session. The code works once, and React's StrictMode runs an
 * effect twice in development, so a second call for the same code shares the first one's result.
 */
export function exchangeCodeOnce(session: Session, code: string): Promise<void> {
  let exchange = exchanges.get(code);
  if (exchange === undefined) {
    exchange = exchangeOauthCode({ body: { code } }).then((pair) => session.signIn(pair));
    exchanges.set(code, exchange);
  }
  return exchange;
}
