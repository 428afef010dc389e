/** One post, with its votes and, for its owner, the links to edit and delete it. */

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { getRouteApi, Link, useNavigate } from "@tanstack/react-router";

import { ApiError } from "../api/errors";
import { postQuery, queryKeys } from "../api/queries";
import { useCurrentUser, useSessionStatus } from "../auth/useSession";
import { deletePost, type PostRead } from "../client";
import { ErrorAlert } from "../components/ErrorAlert";
import { VoteCount, VoteToggle } from "../components/votes";
import { parsePostId } from "./postId";

const route = getRouteApi("/posts/$postId");

export function PostPage() {
  const postId = parsePostId(route.useParams().postId);
  return postId === null ? <p>Post not found.</p> : <PostDetail postId={postId} />;
}

function PostDetail({ postId }: { postId: number }) {
  const post = useQuery(postQuery(postId));
  if (post.error instanceof ApiError && post.error.status === 404) return <p>Post not found.</p>;
  if (post.data === undefined) return post.isPending ? <p>Loading…</p> : <ErrorAlert error={post.error} />;
  return <PostView post={post.data} />;
}

function PostView({ post }: { post: PostRead }) {
  const signedIn = useSessionStatus() === "signed-in";
  const isOwner = useCurrentUser().data?.id === post.owner_id;
  return (
    <article className="post">
      <h1>{post.title}</h1>
      {!post.published && <p className="draft">Draft</p>}
      <p className="content">{post.content}</p>
      <VoteCount votes={post.votes} />
      {signedIn && <VoteToggle post={post} />}
      {signedIn && isOwner && <OwnerActions postId={post.id} />}
    </article>
  );
}

function OwnerActions({ postId }: { postId: number }) {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  const remove = useMutation({
    mutationFn: () => deletePost({ path: { post_id: postId } }),
    onSuccess: async () => {
      queryClient.removeQueries({ queryKey: queryKeys.post(postId) });
      await queryClient.invalidateQueries({ queryKey: queryKeys.posts });
      await navigate({ to: "/" });
    },
  });

  return (
    <div className="actions">
      <Link to="/posts/$postId/edit" params={{ postId: String(postId) }}>
        Edit
      </Link>
      <button
        type="button"
        disabled={remove.isPending}
        onClick={() => window.confirm("Delete this post?") && remove.mutate()}
      >
        Delete
      </button>
      <ErrorAlert error={remove.error} />
    </div>
  );
}
