/** The objects every page shares: this tab's session and the query cache. */

import { QueryClient } from "@tanstack/react-query";

import { configureApiClient } from "./api/client";
import { ApiError } from "./api/errors";
import { createSession } from "./auth/session";

export const session = createSession({
  storage: window.localStorage,
  // Undefined outside secure contexts, whatever the DOM typings say.
  locks: navigator.locks as LockManager | undefined,
  tabEvents: window,
});
configureApiClient(session);

export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // An answer such as 404 or 403 will not change on a second try; an outage may.
      retry: (failures, error) =>
        failures < 2 && error instanceof ApiError && (error.status === 0 || error.status >= 500),
    },
  },
});
