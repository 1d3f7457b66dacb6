# twill's image: `docker build -t twill:0.1.0 .`
# The build stage compiles the TypeScript and the TUN addon; the runtime stage carries what the
# agent runs (ip, nft, iptables) and the CNI reference plugins the DaemonSet's init container
# installs. Entrypoint: `twill agent`. It needs NET_ADMIN and NET_RAW, not --privileged.
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# node-gyp builds against the image's own headers (/usr/local/include/node): no download.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json binding.gyp ./
COPY native ./native
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 nftables iptables containernetworking-plugins \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/twill
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/build/Release/twill_tun.node ./build/Release/twill_tun.node
RUN ln -s /opt/twill/dist/cli/main.js /usr/local/bin/twill && twill --version
ENTRYPOINT ["twill", "agent"]

# The compose lab's node (deploy/compose): the agent plus ping and a script that wires a pod.
# `docker build --target lab`; the default target stays the plain runtime image below.
FROM runtime AS lab
RUN apt-get update \
 && apt-get install -y --no-install-recommends iputils-ping \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/compose/lab-node.sh /usr/local/bin/twill-lab-node
ENTRYPOINT ["twill-lab-node"]

FROM runtime
