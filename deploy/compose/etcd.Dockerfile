# etcd for the compose lab, from Debian's package (so it builds without an image registry too).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends etcd-server etcd-client \
 && rm -rf /var/lib/apt/lists/*
ENV ETCD_DATA_DIR=/var/lib/etcd
ENTRYPOINT ["etcd"]
