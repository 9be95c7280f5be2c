# The portcullis gateway image (docs/deployment.md, "Container image"):
#   docker build -t portcullis:0.1.0 .
#   docker run --read-only -v portcullis-data:/var/lib/portcullis \
#     -v "$PWD/deploy/gateway.yaml:/etc/portcullis/gateway.yaml:ro" -p 8080:8080 portcullis:0.1.0
# Stage "build" compiles the TypeScript with the dev dependencies. The runtime stage holds only the production
# dependencies and dist/gateway (no opa CLI, no tests, benchmarks or demo), runs as a numeric non-root user and
# writes only under /var/lib/portcullis (a volume), so it runs on a read-only root file system.
# No engine is needed to check this file: scripts/check-dockerfile.mjs (make deploy-lint) reads it and replays
# the runtime stage in a temporary folder.

ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY gateway ./gateway
RUN npx --no -- tsc -p tsconfig.json

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# No production dependency has an install script (package-lock.json: no hasInstallScript).
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist/gateway ./dist/gateway
# The only writable path: audit file, durable outbox, dead-letter file (point audit.file and audit.outbox.dir here).
RUN install -d -o 10001 -g 10001 -m 0750 /var/lib/portcullis
VOLUME ["/var/lib/portcullis"]
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/gateway/cli/main.js"]
CMD ["serve", "--config", "/etc/portcullis/gateway.yaml"]
