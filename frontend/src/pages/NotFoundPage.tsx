/** Any path no route matches. */

import { Link } from "@tanstack/react-router";

export function NotFoundPage() {
  return (
    <section>
      <p>Page not found.</p>
      <Link to="/">Back to the posts</Link>
    </section>
  );
}
