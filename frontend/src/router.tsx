/** The route tree: every page, its search parameters, and which pages need a signed-in user. */

import {
  createRootRoute,
  createRoute,
  createRouter,
  redirect,
  type ParsedLocation,
} from "@tanstack/react-router";

import { session } from "./app";
import { safeRedirect } from "./auth/redirect";
import { ErrorAlert } from "./components/ErrorAlert";
import { Layout } from "./pages/Layout";
import { AccountPage } from "./pages/account/AccountPage";
import { LoginPage } from "./pages/LoginPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { OAuthCallbackPage } from "./pages/OAuthCallbackPage";
import { EditPostPage, NewPostPage } from "./pages/PostEditorPages";
import { PostListPage } from "./pages/PostListPage";
import { PostPage } from "./pages/PostPage";
import { RegisterPage } from "./pages/RegisterPage";

type Search = Record<string, unknown>;

function optionalText(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

async function requireSignIn({ location }: { location: ParsedLocation }): Promise<void> {
  await session.whenStarted();
  if (session.getStatus() !== "signed-in") {
    throw redirect({ to: "/login", search: { redirect: location.href } });
  }
}

const rootRoute = createRootRoute({ component: Layout, notFoundComponent: NotFoundPage });

export interface PostListSearch {
  search?: string;
  offset?: number;
}

const postListRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/",
  validateSearch: (search: Search): PostListSearch => {
    const offset = Number(search.offset);
    return {
      search: optionalText(search.search),
      offset: Number.isSafeInteger(offset) && offset > 0 ? offset : undefined,
    };
  },
  component: PostListPage,
});

const newPostRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/posts/new",
  beforeLoad: requireSignIn,
  component: NewPostPage,
});

const postRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/posts/$postId",
  component: PostPage,
});

const editPostRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/posts/$postId/edit",
  beforeLoad: requireSignIn,
  component: EditPostPage,
});

export interface LoginSearch {
  redirect?: string;
  notice?: "password-changed";
}

const loginRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/login",
  validateSearch: (search: Search): LoginSearch => ({
    redirect: safeRedirect(search.redirect),
    notice: search.notice === "password-changed" ? "password-changed" : undefined,
  }),
  component: LoginPage,
});

const registerRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/register",
  component: RegisterPage,
});

const oauthCallbackRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/auth/callback",
  validateSearch: (search: Search): { code?: string; linked?: string } => ({
    code: optionalText(search.code),
    linked: optionalText(search.linked),
  }),
  component: OAuthCallbackPage,
});

const accountRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: "/account",
  validateSearch: (search: Search): { linked?: string } => ({ linked: optionalText(search.linked) }),
  beforeLoad: requireSignIn,
  component: AccountPage,
});

const routeTree = rootRoute.addChildren([
  postListRoute,
  newPostRoute,
  postRoute,
  editPostRoute,
  loginRoute,
  registerRoute,
  oauthCallbackRoute,
  accountRoute,
]);

export const router = createRouter({
  routeTree,
  // The default error page prints the exception; people get the problem's detail instead.
  defaultErrorComponent: ({ error }) => <ErrorAlert error={error} />,
});

declare module "@tanstack/react-router" {
  interface Register {
    router: typeof router;
  }
}
