# One image for both roles: ROLE=api or ROLE=worker picks what a container runs.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
# The Vulkan loader, which Dawn (the webgpu package) opens to reach a GPU; the driver itself comes
# from the host (NVIDIA's container toolkit mounts it with the `graphics` capability).
RUN apt-get update && apt-get install -y --no-install-recommends libvulkan1 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Dev tools (TypeScript, ESLint) stay out; tsx runs the sources.
RUN npm ci --omit=dev && npm cache clean --force
# A native backend on request (tfjs-node or tfjs-node-gpu): its install downloads libtensorflow.
ARG NATIVE_BACKEND
RUN if [ -n "$NATIVE_BACKEND" ]; then npm install --omit=dev --no-save "@tensorflow/$NATIVE_BACKEND@4.22.0" && npm cache clean --force; fi
COPY tsconfig.json ./
COPY src ./src
# Models, checkpoints and uploaded data sets default to folders under DATA_DIR; made here, so that
# a volume mounted on one starts owned by the user the service runs as.
RUN mkdir -p /data/artifacts /data/checkpoints /data/datasets && chown -R node:node /data
ENV HOST=0.0.0.0 PORT=3000 DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 3000
USER node
CMD ["npm", "start"]
