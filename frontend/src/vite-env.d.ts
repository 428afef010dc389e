interface ImportMetaEnv {
  /** The API's origin when it is not the frontend's own, e.g. `https://api.example.com`. */
  readonly VITE_API_BASE_URL?: string;
}
