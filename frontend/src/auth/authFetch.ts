/** The fetch under the API client: a 401 to a bearer call gets one refresh and one retry. */

import type { Session } from "./session";

const BEARER = /^Bearer (.+)$/;

export function createAuthFetch(session: Pick<Session, "renewAccessToken">): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const sent = BEARER.exec(request.headers.get("Authorization") ?? "")?.[1];
    // Anonymous calls (login, refresh, the public reads of a signed-out tab) are passed through:
    // their 401 means wrong credentials, not an expired access token.
    if (sent === undefined) return fetch(request);

    // A body can be read once, so keep a copy for the retry before sending.
    const retry = request.clone();
    const response = await fetch(request);
    if (response.status !== 401) return response;

    const token = await session.renewAccessToken(sent);
    if (token === null) return response;
    retry.headers.set("Authorization", `Bearer ${token}`);
    return fetch(retry);
  };
}
