# berth container image: build with the full toolchain, run with production dependencies only, as
# the unprivileged `node` user. Data lives in the /var/lib/registry volume; the config is
# docker/gateway.yml, copied to /etc/berth/gateway.yml (mount your own there to replace it).
#
#   docker build -t berth .
#   docker run -p 5000:5000 -v berth-data:/var/lib/registry berth

# ---- build: compile TypeScript, bundle it (scripts/bundle.mjs), then drop dev dependencies --------
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Dependencies first (cached while only sources change); the root `prepare` runs after sources exist.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# ---- runtime ----------------------------------------------------------------------------------
FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/bundle ./dist/bundle
COPY docker/gateway.yml /etc/berth/gateway.yml
RUN mkdir -p /var/lib/registry && chown node:node /var/lib/registry
USER node
VOLUME /var/lib/registry
EXPOSE 5000
# Any answer below 500 means the process serves HTTP (401 once auth is configured is healthy too).
HEALTHCHECK --interval=30s --timeout=5s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:5000/v2/').then(r=>process.exit(r.status<500?0:1),()=>process.exit(1))"]
# node is PID 1: berth handles SIGTERM/SIGINT itself (drains in-flight requests, exits 0).
ENTRYPOINT ["node", "/app/dist/bundle/main.js"]
CMD ["serve", "--config", "/etc/berth/gateway.yml"]
