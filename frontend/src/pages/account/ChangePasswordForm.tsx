/** A new password: the server then ends every session, so the user signs in again. */

import { useMutation } from "@tanstack/react-query";
import { useNavigate } from "@tanstack/react-router";
import type { FormEvent } from "react";

import { session } from "../../app";
import { updateCurrentUser } from "../../client";
import { ErrorAlert } from "../../components/ErrorAlert";
import { formText, TextField } from "../../components/fields";

export function ChangePasswordForm() {
  const navigate = useNavigate();
  const change = useMutation({
    mutationFn: (form: HTMLFormElement) =>
      updateCurrentUser({
        body: { current_password: formText(form, "current_password"), password: formText(form, "password") },
      }),
    onSuccess: async () => {
      // Leave first: signing out on this page would send the router to a plain sign-in.
      await navigate({ to: "/login", search: { notice: "password-changed" } });
      session.clear();
    },
  });

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    change.mutate(event.currentTarget);
  }

  return (
    <section aria-labelledby="password-heading">
      <h2 id="password-heading">Change password</h2>
      <form className="stack" onSubmit={submit}>
        <TextField
          label="Current password"
          name="current_password"
          type="password"
          autoComplete="current-password"
        />
        <TextField label="New password" name="password" type="password" autoComplete="new-password" />
        <ErrorAlert error={change.error} />
        <button type="submit" disabled={change.isPending}>
          Change password
        </button>
      </form>
    </section>
  );
}
