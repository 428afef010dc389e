/** Labelled form controls, and reading a submitted form's values. */

import { useId, type InputHTMLAttributes, type TextareaHTMLAttributes } from "react";

type FieldProps = { label: string; name: string } & InputHTMLAttributes<HTMLInputElement>;

export function TextField({ label, ...input }: FieldProps) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} {...input} />
    </div>
  );
}

export function TextAreaField({
  label,
  ...textarea
}: { label: string; name: string } & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea id={id} {...textarea} />
    </div>
  );
}

export function CheckboxField({ label, ...input }: FieldProps) {
  const id = useId();
  return (
    <div className="field checkbox">
      <input id={id} type="checkbox" {...input} />
      <label htmlFor={id}>{label}</label>
    </div>
  );
}

/** A text control's value; the form holds only the fields rendered above. */
export function formText(form: HTMLFormElement, name: string): string {
  const value = new FormData(form).get(name);
  return typeof value === "string" ? value : "";
}

export function formChecked(form: HTMLFormElement, name: string): boolean {
  return new FormData(form).get(name) !== null;
}
