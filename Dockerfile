# The preemption-oracle server image: a release build in a Rust image, copied into a
# slim Debian image that carries only CA certificates, run as a numeric non-root user.
#
#   docker build -t preemption-oracle:0.1.0 .
#   docker run --rm -p 50051:50051 preemption-oracle:0.1.0      # the demo cluster
#
# deploy/README.md explains the Kubernetes manifests that run it. Not built in CI.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin preemption-oracle

FROM debian:bookworm-slim
# CA certificates, for TLS peers verified against public roots. (The in-cluster config
# verifies the API server with the ServiceAccount's own CA.)
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/preemption-oracle /usr/local/bin/preemption-oracle
# Numeric, so the kubelet can check runAsNonRoot without an /etc/passwd entry.
USER 65532:65532
# gRPC, health (kubelet probes), metrics.
EXPOSE 50051 8081 9090
ENTRYPOINT ["/usr/local/bin/preemption-oracle"]
CMD ["serve", "--demo", "--listen", "0.0.0.0:50051"]
