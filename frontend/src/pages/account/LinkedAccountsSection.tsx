/** The provider identities linked to the account: unlink one, or link another provider. */

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { oauthAccountsQuery, oauthProvidersQuery, queryKeys } from "../../api/queries";
import { oauthCallbackUrl } from "../../auth/oauth";
import { startOauthLink, unlinkOauthAccount } from "../../client";
import { ErrorAlert } from "../../components/ErrorAlert";

export function LinkedAccountsSection() {
  const accounts = useQuery(oauthAccountsQuery());
  const providers = useQuery(oauthProvidersQuery());
  const queryClient = useQueryClient();
  const unlink = useMutation({
    mutationFn: (provider: string) => unlinkOauthAccount({ path: { provider } }),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: queryKeys.oauthAccounts }),
  });
  const link = useMutation({
    mutationFn: (provider: string) =>
      startOauthLink({
        path: { provider },
        query: { redirect_to: oauthCallbackUrl() },
        // The answer sets the cookie that binds the flow to this browser; a frontend on another
        // origin than the API only keeps it from a call made with credentials.
        credentials: "include",
      }),
    onSuccess: ({ authorization_url }) => {
      window.location.href = authorization_url;
    },
  });

  const linked = accounts.data ?? [];
  const linkable = (providers.data?.providers ?? []).filter(
    (provider) => !linked.some((account) => account.provider === provider.name),
  );

  return (
    <section aria-labelledby="linked-heading">
      <h2 id="linked-heading">Linked accounts</h2>
      <ErrorAlert error={accounts.error ?? providers.error ?? unlink.error ?? link.error} />
      {accounts.data !== undefined && linked.length === 0 && <p>No linked accounts.</p>}
      <ul className="rows">
        {linked.map((account) => (
          <li key={account.provider}>
            <div>
              <strong>{account.provider}</strong>
              {account.email !== null && <div className="muted">{account.email}</div>}
            </div>
            <button type="button" disabled={unlink.isPending} onClick={() => unlink.mutate(account.provider)}>
              Unlink {account.provider}
            </button>
          </li>
        ))}
      </ul>
      {linkable.length > 0 && (
        <div className="actions">
          {linkable.map((provider) => (
            <button
              key={provider.name}
              type="button"
              disabled={link.isPending}
              onClick={() => link.mutate(provider.name)}
            >
              Link {provider.display_name}
            </button>
          ))}
        </div>
      )}
    </section>
  );
}
