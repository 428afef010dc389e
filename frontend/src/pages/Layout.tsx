/** The frame of every page: the header with the navigation, and the page below it. */

import { useMutation } from "@tanstack/react-query";
import { Link, Outlet } from "@tanstack/react-router";

import { session } from "../app";
import { useCurrentUser, useSessionStatus } from "../auth/useSession";

export function Layout() {
  const status = useSessionStatus();
  const me = useCurrentUser();
  const signOut = useMutation({ mutationFn: () => session.signOut() });

  return (
    <>
      <header className="site-header">
        <Link to="/" className="brand">
          FastAPI Starter
        </Link>
        <nav aria-label="Main">
          <Link to="/">Posts</Link>
          {status === "signed-out" && (
            <>
              <Link to="/login">Sign in</Link>
              <Link to="/register">Register</Link>
            </>
          )}
          {status === "signed-in" && (
            <>
              <Link to="/posts/new">New post</Link>
              <Link to="/account">Account</Link>
              <button type="button" disabled={signOut.isPending} onClick={() => signOut.mutate()}>
                Sign out
              </button>
            </>
          )}
        </nav>
        {status === "signed-in" && <span className="user-email">{me.data?.email}</span>}
      </header>
      <main>
        <Outlet />
      </main>
    </>
  );
}
