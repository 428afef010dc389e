/** The home page: published posts and the caller's drafts, newest first, searched and paged. */

import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { getRouteApi, Link } from "@tanstack/react-router";
import type { FormEvent } from "react";

import { POSTS_PER_PAGE, postListQuery } from "../api/queries";
import { useSessionStatus } from "../auth/useSession";
import type { PostRead } from "../client";
import { ErrorAlert } from "../components/ErrorAlert";
import { formText, TextField } from "../components/fields";
import { VoteCount, VoteToggle } from "../components/votes";

const route = getRouteApi("/");

export function PostListPage() {
  const { search = "", offset = 0 } = route.useSearch();
  const navigate = route.useNavigate();
  // The previous page stays on screen while the next one loads.
  const posts = useQuery({ ...postListQuery(search, offset), placeholderData: keepPreviousData });

  function submitSearch(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const text = formText(event.currentTarget, "search").trim();
    void navigate({ search: { search: text === "" ? undefined : text } });
  }

  function goTo(nextOffset: number) {
    void navigate({ search: (current) => ({ ...current, offset: nextOffset > 0 ? nextOffset : undefined }) });
  }

  const page = posts.data;
  return (
    <section>
      <h1>Posts</h1>
      <form role="search" className="search" onSubmit={submitSearch}>
        {/* Keyed by the URL's search so that back and forward show the search they restore. */}
        <TextField key={search} label="Search" name="search" type="search" defaultValue={search} />
        <button type="submit">Search</button>
      </form>
      <ErrorAlert error={posts.error} />
      {page === undefined ? (
        posts.isPending && <p>Loading…</p>
      ) : page.items.length === 0 ? (
        <p>No posts yet.</p>
      ) : (
        page.items.map((post) => <PostSummary key={post.id} post={post} />)
      )}
      <div className="pager">
        <button type="button" disabled={offset === 0} onClick={() => goTo(offset - POSTS_PER_PAGE)}>
          Previous
        </button>
        <button
          type="button"
          disabled={page?.next_offset == null}
          onClick={() => page?.next_offset != null && goTo(page.next_offset)}
        >
          Next
        </button>
      </div>
    </section>
  );
}

function PostSummary({ post }: { post: PostRead }) {
  const signedIn = useSessionStatus() === "signed-in";
  return (
    <article className="post">
      <h2>
        <Link to="/posts/$postId" params={{ postId: String(post.id) }}>
          {post.title}
        </Link>
      </h2>
      {!post.published && <p className="draft">Draft</p>}
      <VoteCount votes={post.votes} />
      {signedIn && <VoteToggle post={post} />}
    </article>
  );
}
