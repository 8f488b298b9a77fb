# Perch in a container: the broker compiled to one executable (deno task compile) on Debian,
# run as an unprivileged user, with a health check on the admin API's /healthz.
#
#   docker build -t perch .
#   docker run -p 1883:1883 -v ./perch.yaml:/etc/perch/perch.yaml:ro perch
#
# See docs/operations.md.

FROM denoland/deno:debian-2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY src/ src/
COPY routes/ routes/
RUN deno task compile

FROM debian:bookworm-slim
# curl for the health check; ca-certificates for auth.http and JWKS over HTTPS.
RUN apt-get update \
  && apt-get install -y --no-install-recommends ca-certificates curl \
  && rm -rf /var/lib/apt/lists/* \
  && useradd --system --uid 10001 --home-dir /var/lib/perch --create-home \
    --shell /usr/sbin/nologin perch
COPY --from=build /src/dist/perch /usr/local/bin/perch
COPY packaging/perch.yaml /etc/perch/perch.yaml
USER perch
WORKDIR /var/lib/perch
# MQTT over TCP, TLS, WebSocket, secure WebSocket; the admin API.
EXPOSE 1883 8883 8083 8084 8888
# The admin API listens on loopback until credentials are configured: the check runs inside.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["curl", "--fail", "--silent", "--show-error", "http://127.0.0.1:8888/healthz"]
ENTRYPOINT ["/usr/local/bin/perch"]
CMD ["--config", "/etc/perch/perch.yaml"]
