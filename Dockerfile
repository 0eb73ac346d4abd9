# Multi-stage build of dicomwebserver: a Rust build stage, then a small runtime image that runs
# as a non-root user with the storage root on a volume.
#   docker build -t dicomwebserver .
#   docker run -p 127.0.0.1:5000:5000 -v dicomweb-data:/data dicomwebserver
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked --bin dicomwebserver

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin dicomweb \
    && mkdir -p /data && chown dicomweb:dicomweb /data
COPY --from=build /src/target/release/dicomwebserver /usr/local/bin/dicomwebserver
USER dicomweb
VOLUME /data
EXPOSE 5000
# Inside the container the server must listen on all interfaces for the port mapping; publish
# it on the host's loopback (as above) or behind a TLS-terminating proxy.
ENTRYPOINT ["/usr/local/bin/dicomwebserver", "--host", "0.0.0.0", "--port", "5000", "--dir", "/data"]
