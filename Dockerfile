# syntax=docker/dockerfile:1

# Build stage: a static binary (Pebble falls back to its pure-Go zstd without
# cgo), so the runtime image needs no libc.
FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -ldflags="-s -w" -o /smartgroups ./cmd/smartgroups
# An empty /data owned by the runtime user: a fresh named volume mounted there
# inherits this ownership, so the non-root process can write its state.
RUN mkdir /data

# Runtime stage: distroless, no shell, runs as nonroot (uid 65532).
#
# The default command serves the HTTP API on all interfaces of the container,
# which serve only allows with an API token: pass the admin token in the
# environment, e.g.
#   docker run -e SMARTGROUPS_API_TOKEN="$(openssl rand -hex 16)" smartgroups:dev
# (at least 16 characters; or mount a --spot-tokens file). Every flag has such
# a variable, SMARTGROUPS_<FLAG>; SMARTGROUPS_BROKERS overrides kafka:9092.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /smartgroups /usr/local/bin/smartgroups
COPY --from=build --chown=65532:65532 /data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/smartgroups"]
CMD ["serve", "--brokers", "kafka:9092", "--http", "0.0.0.0:8080", "--data-dir", "/data"]
