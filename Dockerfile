# syntax=docker/dockerfile:1

# Build stage: compile the server (src/ only: no benchmarks, no tests) with the dev dependencies,
# then keep only the production ones.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# npm run build also bundles the management UI (src/ui) into dist/ui with this script.
COPY scripts/build-ui.mjs ./scripts/
RUN npm run build && npm prune --omit=dev

# Runtime stage: no compiler, no dev dependencies, not root.
FROM node:24-slim
ENV NODE_ENV=production \
    SLUICE_DATA_DIR=/var/lib/sluice
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
# The management UI's static files (served at / to browsers, and under /ui/).
COPY --from=build /app/dist/ui ./dist/ui
COPY package.json ./
COPY config ./config
# The protobuf definitions the OTLP and Loki doors load at start.
COPY proto ./proto
RUN mkdir -p /var/lib/sluice && chown node:node /var/lib/sluice
USER node
VOLUME ["/var/lib/sluice"]
# HTTP API, NDJSON over TCP, AMQP 0-9-1, syslog (TCP and UDP); config/docker.yaml binds each on 0.0.0.0.
EXPOSE 7400 7401 5672 5514 5514/udp
# /healthz answers without credentials: the process is up (readiness is /readyz).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:7400/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# server.shutdownTimeout (5s in config/docker.yaml) keeps a stop within docker stop's 10 s grace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/cli.js"]
# Needs SLUICE_ADMIN_PASSWORD (the admin user's password): without it the start is refused, saying so.
CMD ["serve", "--config", "config/docker.yaml"]
