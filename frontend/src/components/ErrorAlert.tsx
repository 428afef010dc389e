/** A failed call, told to the person: the problem's detail and, for a 422, each issue. */

import { describeError } from "../api/errors";

export function ErrorAlert({ error }: { error: unknown }) {
  if (error === null || error === undefined) return null;
  const { detail, issues } = describeError(error);
  return (
    <div role="alert" className="alert">
      <p>{detail}</p>
      {issues.length > 0 && (
        <ul>
          {issues.map((issue, index) => (
            <li key={index}>{issue}</li>
          ))}
        </ul>
      )}
    </div>
  );
}
