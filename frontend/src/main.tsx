/** Start-up: refresh a stored session, then render the router. */

import "./styles.css";

import { QueryClientProvider } from "@tanstack/react-query";
import { RouterProvider } from "@tanstack/react-router";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { queryClient, session } from "./app";
import { router } from "./router";

// Answers depend on the caller (votes, drafts, the account): when this tab signs in or out,
// here or through another tab, drop them all and refetch what is on screen, and re-check the
// pages that need a signed-in user. Synchronous, so a query waiting for the start-up refresh
// is cancelled before its request leaves.
session.subscribe(() => {
  void queryClient.resetQueries();
  void router.invalidate();
});
session.start();

const root = document.getElementById("root");
if (root === null) throw new Error("index.html has no #root element");

createRoot(root).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  </StrictMode>,
);
