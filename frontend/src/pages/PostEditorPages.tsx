/** Writing a new post and editing one: both need a signed-in user (see router.tsx). */

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { getRouteApi, useNavigate } from "@tanstack/react-router";

import { ApiError } from "../api/errors";
import { postQuery, queryKeys } from "../api/queries";
import { createPost, updatePost, type PostCreate, type PostRead } from "../client";
import { ErrorAlert } from "../components/ErrorAlert";
import { PostForm } from "../components/PostForm";
import { parsePostId } from "./postId";

/** After a write: refresh every post query, then show the post. */
function useShowSavedPost() {
  const queryClient = useQueryClient();
  const navigate = useNavigate();
  return async (post: PostRead) => {
    queryClient.setQueryData(queryKeys.post(post.id), post);
    await queryClient.invalidateQueries({ queryKey: queryKeys.posts });
    await navigate({ to: "/posts/$postId", params: { postId: String(post.id) } });
  };
}

export function NewPostPage() {
  const showSavedPost = useShowSavedPost();
  const create = useMutation({
    mutationFn: (post: Required<PostCreate>) => createPost({ body: post }),
    onSuccess: showSavedPost,
  });
  return (
    <section>
      <h1>New post</h1>
      <PostForm
        initial={{ title: "", content: "", published: true }}
        submitLabel="Create post"
        pending={create.isPending}
        error={create.error}
        onSubmit={(post) => create.mutate(post)}
      />
    </section>
  );
}

const editRoute = getRouteApi("/posts/$postId/edit");

export function EditPostPage() {
  const postId = parsePostId(editRoute.useParams().postId);
  return postId === null ? <p>Post not found.</p> : <EditPost postId={postId} />;
}

function EditPost({ postId }: { postId: number }) {
  const post = useQuery(postQuery(postId));
  const showSavedPost = useShowSavedPost();
  const save = useMutation({
    mutationFn: (changes: Required<PostCreate>) => updatePost({ path: { post_id: postId }, body: changes }),
    onSuccess: showSavedPost,
  });

  if (post.error instanceof ApiError && post.error.status === 404) return <p>Post not found.</p>;
  if (post.data === undefined) return post.isPending ? <p>Loading…</p> : <ErrorAlert error={post.error} />;
  return (
    <section>
      <h1>Edit post</h1>
      <PostForm
        initial={post.data}
        submitLabel="Save"
        pending={save.isPending}
        error={save.error}
        onSubmit={(changes) => save.mutate(changes)}
      />
    </section>
  );
}
