# berth container image, a drop-in for registry:2: build with the full toolchain, run with production
# dependencies only, as the unprivileged `node` user (uid 1000). Config as registry:2 finds it:
# REGISTRY_CONFIGURATION_PATH, else /etc/docker/registry/config.yml (the default shipped here: filesystem
# storage in the /var/lib/registry volume, plain HTTP on :5000; mount yours over it), plus REGISTRY_* env.
#
#   docker build -t berth .
#   docker run -p 5000:5000 -v berth-data:/var/lib/registry berth
#
# Build args: BASE_IMAGE (both stages; default the official Node 24 image; test/e2e/image.test.ts builds
# with an equivalent base made offline), NODE_EXTRA_CA_CERTS (build stage only: a CA bundle for npm behind
# a TLS-intercepting proxy, e.g. `-v /etc/ssl/certs:/etc/ssl/certs:ro --build-arg
# NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt`; empty: Node's own CAs).
ARG BASE_IMAGE=node:24-bookworm-slim

# ---- build: compile TypeScript, bundle it (scripts/bundle.mjs), then drop dev dependencies --------
FROM ${BASE_IMAGE} AS build
# A build ARG is in the environment of the RUN steps below (and not in the image).
ARG NODE_EXTRA_CA_CERTS=
WORKDIR /app
COPY package.json package-lock.json ./
# Dependencies first (cached while only sources change); the root `prepare` runs after sources exist.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- runtime ----------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/bundle ./dist/bundle
# registry:2's own default config, in its place; a config mounted there (or REGISTRY_CONFIGURATION_PATH)
# replaces it. /usr/local/bin/berth: `docker exec CONTAINER berth htpasswd add …` and the like.
COPY docker/config.yml /etc/docker/registry/config.yml
RUN ln -s /app/dist/bundle/main.js /usr/local/bin/berth \
 && mkdir -p /var/lib/registry && chown 1000:1000 /var/lib/registry
# Numeric, so Kubernetes' runAsNonRoot can verify it (uid 1000 is the base image's `node` user). A volume
# made by registry:2 (root-owned) is refused at start with one line: run with --user 0, or chown -R 1000:1000.
USER 1000:1000
VOLUME /var/lib/registry
EXPOSE 5000
# `berth healthcheck` reads the config serve reads (same discovery, same REGISTRY_* env) and probes the
# configured address, scheme and certificate: healthy with TLS, another port, or auth (a 401 is healthy).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/dist/bundle/main.js", "healthcheck"]
# node is PID 1: berth handles SIGTERM/SIGINT itself (drains in-flight requests, exits 0). `serve` without
# --config finds the config as above; `docker run berth check-config FILE`, `… gc`, `… htpasswd` run those.
# --max-semi-space-size=16: Node 20/22's young generation; Node 24's default (64 MiB semi-spaces) held 55-65 MiB
# more RSS under load (README, "Performance": launch flag).
ENTRYPOINT ["node", "--max-semi-space-size=16", "/app/dist/bundle/main.js"]
CMD ["serve"]
