# syntax=docker/dockerfile:1
# One image for every role; the command picks it:
#   API (default)  node dist/src/server.js          (= npm start)
#   worker         node dist/src/worker/main.js     (= npm run worker)
#   migrate        node dist/scripts/migrate.js     (= npm run migrate)
#   one-shots      npm run reconcile -- --fix, ...  (npm works here: see npm_config_ignore_scripts below)
# Long-running roles start node directly: npm runs a script through `sh -c` and does not pass SIGTERM on
# to it (checked with npm 10 and 11), so under `npm start` a graceful shutdown would never begin.
# The current Node LTS (24, "Krypton"), pinned by exact version so a rebuild gets the same runtime. For a
# release build pin the manifest-list digest too (a moved tag then cannot change the base):
#   docker buildx imagetools inspect node:24.X.Y-bookworm-slim   -> NODE_IMAGE=node:24.X.Y-bookworm-slim@sha256:...
# (the machine this was written on cannot reach Docker Hub, so no digest is recorded here).
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

# --- build: dev dependencies + TypeScript compile -------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency needs an install script to build dist/ (esbuild's only serves tsx in tests), and `prepare`
# would build before the sources are copied: the build runs explicitly once they are.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY scripts/patch-postgres.mjs scripts/
# The postgres driver's fix (scripts/patch-postgres.mjs): the installs here skip lifecycle scripts.
RUN node scripts/patch-postgres.mjs
COPY . .
RUN npm run build

# --- runtime: production dependencies, compiled output, migrations --------------------------
FROM ${NODE_IMAGE} AS runtime
# `npm ci` builds dist/ through the `prepare` script in a clone. Here dist/ comes from the build stage and
# TypeScript is absent: ignore-scripts skips lifecycle scripts (prepare included), while a script named
# explicitly (`npm start`, `npm run reconcile`) still runs.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    npm_config_ignore_scripts=true \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/patch-postgres.mjs scripts/
RUN npm ci --omit=dev && node scripts/patch-postgres.mjs && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY drizzle ./drizzle
# The image's own unprivileged user (uid 1000); the app only reads /app.
USER node
EXPOSE 3000
# Liveness of the API. The worker serves /healthz on WORKER_METRICS_PORT; compose overrides the check there.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.HEALTHCHECK_PORT||process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node handles SIGTERM itself (close-with-grace); an init (compose `init: true`, `docker run --init`) as
# PID 1 forwards signals and reaps zombies.
CMD ["node", "dist/src/server.js"]
