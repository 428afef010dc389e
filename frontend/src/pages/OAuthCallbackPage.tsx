/** Where a provider's flow ends: `?code=` after a sign-in, `?linked=` after a link. */

import { getRouteApi, Link, useNavigate } from "@tanstack/react-router";
import { useEffect, useState, type ReactNode } from "react";

import { session } from "../app";
import { exchangeCodeOnce } from "../auth/oauth";
import { ErrorAlert } from "../components/ErrorAlert";

const route = getRouteApi("/auth/callback");

export function OAuthCallbackPage() {
  const { code, linked } = route.useSearch();
  const navigate = useNavigate();
  const [error, setError] = useState<unknown>(null);

  useEffect(() => {
    // Each navigation replaces this page, taking the spent code out of the history.
    if (linked !== undefined) {
      void navigate({ to: "/account", search: { linked }, replace: true });
      return;
    }
    if (code === undefined) return;
    let current = true;
    exchangeCodeOnce(session, code).then(
      () => {
        if (current) void navigate({ to: "/", replace: true });
      },
      (failure: unknown) => {
        // The code leaves the address bar and the history whether or not it was spent.
        window.history.replaceState(null, "", "/auth/callback");
        if (current) setError(failure);
      },
    );
    return () => {
      current = false;
    };
  }, [code, linked, navigate]);

  if (code === undefined && linked === undefined) {
    return (
      <Failure>
        <p role="alert">This sign-in link is incomplete.</p>
      </Failure>
    );
  }
  if (error !== null) {
    return (
      <Failure>
        <ErrorAlert error={error} />
      </Failure>
    );
  }
  return <p>Signing in…</p>;
}

function Failure({ children }: { children: ReactNode }) {
  return (
    <section className="narrow">
      {children}
      <Link to="/login">Back to sign in</Link>
    </section>
  );
}
