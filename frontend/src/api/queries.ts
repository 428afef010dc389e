/** Every query's key and fetcher, so that invalidations name the keys the reads use. */

import { queryOptions } from "@tanstack/react-query";

import {
  listOauthAccounts,
  listOauthProviders,
  listPosts,
  listSessions,
  readCurrentUser,
  readPost,
} from "../client";
import { session } from "../app";

export const POSTS_PER_PAGE = 20;

export const queryKeys = {
  me: ["me"] as const,
  /** Every post query, lists and single posts alike: a vote or an edit shows in both. */
  posts: ["posts"] as const,
  postList: (search: string, offset: number) => ["posts", "list", { search, offset }] as const,
  post: (postId: number) => ["posts", "detail", postId] as const,
  sessions: ["sessions"] as const,
  oauthAccounts: ["oauth-accounts"] as const,
  oauthProviders: ["oauth-providers"] as const,
};

// Each fetcher passes on the query's signal, so a cancelled query aborts its request.

/**
 * For the queries only a signed-in caller may make. A function, read whenever the query would
 * run: a sign-out resets every query at once (main.tsx), and these must not then be sent
 * anonymously by pages that have not re-rendered yet.
 */
const signedIn = () => session.getStatus() === "signed-in";

export const meQuery = () =>
  queryOptions({
    queryKey: queryKeys.me,
    queryFn: ({ signal }) => readCurrentUser({ signal }),
    enabled: signedIn,
    // The header and several pages read it; it changes only with a new sign-in, which resets it.
    staleTime: Infinity,
  });

export const postListQuery = (search: string, offset: number) =>
  queryOptions({
    queryKey: queryKeys.postList(search, offset),
    queryFn: ({ signal }) =>
      listPosts({
        query: { limit: POSTS_PER_PAGE, offset, ...(search === "" ? {} : { search }) },
        signal,
      }),
  });

export const postQuery = (postId: number) =>
  queryOptions({
    queryKey: queryKeys.post(postId),
    queryFn: ({ signal }) => readPost({ path: { post_id: postId }, signal }),
  });

export const sessionsQuery = () =>
  queryOptions({
    queryKey: queryKeys.sessions,
    queryFn: ({ signal }) => listSessions({ signal }),
    enabled: signedIn,
  });

export const oauthAccountsQuery = () =>
  queryOptions({
    queryKey: queryKeys.oauthAccounts,
    queryFn: ({ signal }) => listOauthAccounts({ signal }),
    enabled: signedIn,
  });

export const oauthProvidersQuery = () =>
  queryOptions({
    queryKey: queryKeys.oauthProviders,
    queryFn: ({ signal }) => listOauthProviders({ signal }),
    // The list comes from the server's settings, which change only with a restart.
    staleTime: Infinity,
  });
