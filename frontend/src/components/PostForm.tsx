/** The fields of a post, for writing a new one and for editing one. */

import type { FormEvent } from "react";

import type { PostCreate } from "../client";
import { ErrorAlert } from "./ErrorAlert";
import { CheckboxField, formChecked, formText, TextAreaField, TextField } from "./fields";

interface PostFormProps {
  initial: Required<PostCreate>;
  submitLabel: string;
  pending: boolean;
  error: unknown;
  onSubmit: (post: Required<PostCreate>) => void;
}

export function PostForm({ initial, submitLabel, pending, error, onSubmit }: PostFormProps) {
  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = event.currentTarget;
    onSubmit({
      title: formText(form, "title"),
      content: formText(form, "content"),
      published: formChecked(form, "published"),
    });
  }

  return (
    <form className="stack" onSubmit={submit}>
      <TextField label="Title" name="title" defaultValue={initial.title} />
      <TextAreaField label="Content" name="content" rows={10} defaultValue={initial.content} />
      <CheckboxField label="Published" name="published" defaultChecked={initial.published} />
      <ErrorAlert error={error} />
      <button type="submit" disabled={pending}>
        {submitLabel}
      </button>
    </form>
  );
}
