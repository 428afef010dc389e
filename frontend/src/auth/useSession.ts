/** React's view of the session: its status, and the signed-in account. */

import { useQuery } from "@tanstack/react-query";
import { useSyncExternalStore } from "react";

import { meQuery } from "../api/queries";
import { session } from "../app";
import type { SessionStatus } from "./session";

export function useSessionStatus(): SessionStatus {
  return useSyncExternalStore(session.subscribe, session.getStatus);
}

/** The signed-in account; no data while signed out. */
export function useCurrentUser() {
  return useQuery(meQuery());
}
