/** The account's live sessions: end one, or all of them at once. */

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";

import { queryKeys, sessionsQuery } from "../../api/queries";
import { session } from "../../app";
import { endSession, type SessionRead } from "../../client";
import { ErrorAlert } from "../../components/ErrorAlert";

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function SessionsSection() {
  const sessions = useQuery(sessionsQuery());
  const queryClient = useQueryClient();
  const end = useMutation({
    mutationFn: (sessionId: string) => endSession({ path: { session_id: sessionId } }),
    onSettled: () => queryClient.invalidateQueries({ queryKey: queryKeys.sessions }),
  });
  // Signing out everywhere signs this tab out too, and the router then leaves this page.
  const endAll = useMutation({ mutationFn: () => session.signOutEverywhere() });

  return (
    <section aria-labelledby="sessions-heading">
      <h2 id="sessions-heading">Sessions</h2>
      <ErrorAlert error={sessions.error ?? end.error ?? endAll.error} />
      <ul className="rows">
        {sessions.data?.map((item) => (
          <SessionRow key={item.id} item={item} ending={end.isPending} onEnd={() => end.mutate(item.id)} />
        ))}
      </ul>
      <button type="button" disabled={endAll.isPending} onClick={() => endAll.mutate()}>
        Sign out everywhere
      </button>
    </section>
  );
}

function SessionRow({ item, ending, onEnd }: { item: SessionRead; ending: boolean; onEnd: () => void }) {
  return (
    <li>
      <div>
        <strong>{item.user_agent ?? "Unknown browser"}</strong>
        <div className="muted">
          Signed in {dateTime.format(new Date(item.created_at))}, last used{" "}
          {dateTime.format(new Date(item.last_used_at))}
        </div>
      </div>
      {item.current ? (
        <span className="badge">This device</span>
      ) : (
        <button type="button" disabled={ending} onClick={onEnd}>
          End session
        </button>
      )}
    </li>
  );
}
