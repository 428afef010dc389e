/** Points the generated API client at the API and at this tab's session. */

import { client } from "../client/client.gen";
import { createAuthFetch } from "../auth/authFetch";
import type { Session } from "../auth/session";
import { toApiError } from "./errors";

/** Same origin unless the build names another (a frontend served apart from the API). */
export const API_BASE_URL: string = import.meta.env.VITE_API_BASE_URL ?? "";

export function configureApiClient(session: Session, baseUrl: string = API_BASE_URL): void {
  client.setConfig({
    baseUrl,
    // Called only for the operations whose OpenAPI entry names the bearer scheme.
    auth: () => session.accessToken(),
    fetch: createAuthFetch(session),
  });
  if (!client.interceptors.error.exists(toApiError)) client.interceptors.error.use(toApiError);
}
