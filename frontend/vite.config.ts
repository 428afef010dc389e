import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// Vitest reads this file too; its defaults (src/**/*.test.ts, the Node environment) suit the tests.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    // The API serves this directory (app/spa.py); it holds nothing but the build.
    outDir: "../app/frontend",
    emptyOutDir: true,
    sourcemap: false,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
});
