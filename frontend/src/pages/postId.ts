/** A post id from the URL: the API's ids are positive integers. */

export function parsePostId(raw: string): number | null {
  const id = Number(raw);
  return /^[1-9][0-9]*$/.test(raw) && Number.isSafeInteger(id) ? id : null;
}
