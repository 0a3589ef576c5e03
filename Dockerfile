# The collector image. Multi-stage: the build stage compiles TypeScript with the dev tools; the
# runtime stage holds only dist/ and production dependencies, and runs as the unprivileged `node` user.
FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY agent ./agent
COPY checks ./checks
COPY collector ./collector
RUN npm run build && npm prune --omit=dev --ignore-scripts

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=root:root /src/package.json ./package.json
COPY --from=build --chown=root:root /src/node_modules ./node_modules
COPY --from=build --chown=root:root /src/dist ./dist
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8470
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8470/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/app/dist/collector/cli.js"]
# Plain HTTP on all interfaces is for a TLS-terminating proxy or ingress in front of the container.
CMD ["serve", "--data-dir", "/data", "--listen", "0.0.0.0:8470", "--allow-plain-http"]
