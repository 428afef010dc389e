/** Registration with an email and a password, then sign-in with them. */

import { useMutation } from "@tanstack/react-query";
import { useNavigate } from "@tanstack/react-router";
import type { FormEvent } from "react";

import { session } from "../app";
import { createUser, login } from "../client";
import { ErrorAlert } from "../components/ErrorAlert";
import { formText, TextField } from "../components/fields";

export function RegisterPage() {
  const navigate = useNavigate();
  const register = useMutation({
    mutationFn: async (form: HTMLFormElement) => {
      const email = formText(form, "email");
      const password = formText(form, "password");
      await createUser({ body: { email, password } });
      return login({ body: { username: email, password } });
    },
    onSuccess: async (pair) => {
      await session.signIn(pair);
      await navigate({ to: "/" });
    },
  });

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    register.mutate(event.currentTarget);
  }

  return (
    <section className="narrow">
      <h1>Register</h1>
      <form className="stack" onSubmit={submit}>
        <TextField label="Email" name="email" type="email" autoComplete="email" />
        <TextField label="Password" name="password" type="password" autoComplete="new-password" />
        <ErrorAlert error={register.error} />
        <button type="submit" disabled={register.isPending}>
          Create account
        </button>
      </form>
    </section>
  );
}
