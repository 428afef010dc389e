/** ApiError: every failed API call, and the words a person is shown for it. */

import type { Problem, ValidationIssue } from "../client";

/** A failed call: `status` 0 when no answer arrived, `problem` null when the body was none. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem | null;
  readonly issues: readonly ValidationIssue[];

  constructor(status: number, body: unknown) {
    const problem = isProblem(body) ? body : null;
    super(problem?.detail ?? describeStatus(status));
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
    this.issues = problem !== null && isIssueList(problem.errors) ? problem.errors : [];
  }

  get errorCode(): string | undefined {
    return this.problem?.error_code;
  }
}

/** The client's error interceptor: `response` is undefined when fetch itself failed. */
export function toApiError(body: unknown, response: Response | undefined): ApiError {
  if (body instanceof ApiError) return body;
  return new ApiError(response?.status ?? 0, body);
}

/** What to show for any error: the problem's detail, never a raw exception's text. */
export function describeError(error: unknown): { detail: string; issues: string[] } {
  if (error instanceof ApiError) {
    return { detail: error.message, issues: error.issues.map((issue) => issue.msg) };
  }
  return { detail: "Something went wrong. Try again.", issues: [] };
}

function describeStatus(status: number): string {
  if (status === 0) return "The server could not be reached. Check your connection and try again.";
  return `The request failed (HTTP ${status}). Try again.`;
}

function isProblem(body: unknown): body is Problem & { errors?: unknown } {
  return (
    typeof body === "object" &&
    body !== null &&
    "detail" in body &&
    typeof body.detail === "string" &&
    "error_code" in body &&
    typeof body.error_code === "string"
  );
}

function isIssueList(value: unknown): value is ValidationIssue[] {
  return (
    Array.isArray(value) &&
    value.every(
      (issue: unknown) =>
        typeof issue === "object" && issue !== null && "msg" in issue && typeof issue.msg === "string",
    )
  );
}
