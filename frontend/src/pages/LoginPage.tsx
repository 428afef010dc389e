/** Sign-in with a password, or with one of the providers the API has configured. */

import { useMutation, useQuery } from "@tanstack/react-query";
import { getRouteApi, useNavigate, useRouter } from "@tanstack/react-router";
import type { FormEvent } from "react";

import { oauthProvidersQuery } from "../api/queries";
import { session } from "../app";
import { oauthSignInUrl } from "../auth/oauth";
import { login } from "../client";
import { ErrorAlert } from "../components/ErrorAlert";
import { formText, TextField } from "../components/fields";

const route = getRouteApi("/login");

export function LoginPage() {
  const { redirect, notice } = route.useSearch();
  const navigate = useNavigate();
  const { history } = useRouter();
  const signIn = useMutation({
    mutationFn: (form: HTMLFormElement) =>
      login({ body: { username: formText(form, "email"), password: formText(form, "password") } }),
    onSuccess: async (pair) => {
      await session.signIn(pair);
      // `redirect` passed safeRedirect in the route's validateSearch: a path on this origin.
      if (redirect === undefined) await navigate({ to: "/" });
      else history.push(redirect);
    },
  });

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    signIn.mutate(event.currentTarget);
  }

  return (
    <section className="narrow">
      <h1>Sign in</h1>
      {notice === "password-changed" && <p role="status">Password changed. Sign in again.</p>}
      <form className="stack" onSubmit={submit}>
        <TextField label="Email" name="email" type="email" autoComplete="username" />
        <TextField label="Password" name="password" type="password" autoComplete="current-password" />
        <ErrorAlert error={signIn.error} />
        <button type="submit" disabled={signIn.isPending}>
          Sign in
        </button>
      </form>
      <ProviderLinks />
    </section>
  );
}

function ProviderLinks() {
  const providers = useQuery(oauthProvidersQuery());
  const list = providers.data?.providers ?? [];
  if (list.length === 0) return null;
  return (
    <ul className="providers">
      {list.map((provider) => (
        <li key={provider.name}>
          <a href={oauthSignInUrl(provider.name)}>Continue with {provider.display_name}</a>
        </li>
      ))}
    </ul>
  );
}
