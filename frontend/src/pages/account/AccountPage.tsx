/** The signed-in user's account: sessions, linked providers and the password. */

import { getRouteApi } from "@tanstack/react-router";

import { useCurrentUser } from "../../auth/useSession";
import { ErrorAlert } from "../../components/ErrorAlert";
import { ChangePasswordForm } from "./ChangePasswordForm";
import { LinkedAccountsSection } from "./LinkedAccountsSection";
import { SessionsSection } from "./SessionsSection";

const route = getRouteApi("/account");

export function AccountPage() {
  const { linked } = route.useSearch();
  const me = useCurrentUser();
  return (
    <section className="account">
      <h1>Account</h1>
      {linked !== undefined && <p role="status">Linked {linked}.</p>}
      {me.data !== undefined && (
        <p>
          Signed in as <strong>{me.data.email}</strong>
        </p>
      )}
      <ErrorAlert error={me.error} />
      <SessionsSection />
      <LinkedAccountsSection />
      <ChangePasswordForm />
    </section>
  );
}
