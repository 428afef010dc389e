/** A post's vote count, and the signed-in caller's toggle for their own vote. */

import { useMutation, useQueryClient } from "@tanstack/react-query";

import { queryKeys } from "../api/queries";
import { castVote, withdrawVote, type PostRead } from "../client";
import { ErrorAlert } from "./ErrorAlert";

export function VoteCount({ votes }: { votes: number }) {
  return <p className="votes">{votes === 1 ? "1 vote" : `${votes} votes`}</p>;
}

export function VoteToggle({ post }: { post: PostRead }) {
  const queryClient = useQueryClient();
  const voted = post.voted === true;
  const toggle = useMutation({
    mutationFn: () => (voted ? withdrawVote : castVote)({ path: { post_id: post.id } }),
    // Awaiting the refetch keeps the button disabled until it shows the new state.
    onSettled: () => queryClient.invalidateQueries({ queryKey: queryKeys.posts }),
  });
  return (
    <>
      <button type="button" aria-pressed={voted} disabled={toggle.isPending} onClick={() => toggle.mutate()}>
        Vote
      </button>
      <ErrorAlert error={toggle.error} />
    </>
  );
}
