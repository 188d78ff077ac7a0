# syntax=docker/dockerfile:1
#
# The image of kube-spread-exporter and check_kube_spread.
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg BRANCH=$(git rev-parse --abbrev-ref HEAD) \
#     -t ghcr.io/kube-spread-exporter/kube-spread-exporter:v$(cat VERSION) .
#
# The binaries are built by `make build`, so they carry exactly the version
# ldflags of a local build. test/deploy checks this file statically (the
# machines that develop this project have no container engine).

# The Go minor version follows go.mod's go directive (a test keeps them
# equal). The builder runs on the build host's platform and cross-compiles,
# which is fast and needs no emulation: the binaries are pure Go.
FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
WORKDIR /src

# Modules first, so this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
ARG TARGETOS
ARG TARGETARCH
# .git is not in the build context (.dockerignore), so the Makefile's
# `git rev-parse` falls back to "unknown"; these arguments override its
# REVISION and BRANCH variables from make's command line instead.
ARG REVISION=unknown
ARG BRANCH=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH \
    make build REVISION=$REVISION BRANCH=$BRANCH

# distroless static: CA certificates, /etc/passwd with user nonroot (65532),
# tzdata, and no shell or package manager. The binaries are static
# (CGO_ENABLED=0 in the Makefile's build), so nothing else is needed.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /src/bin/kube-spread-exporter /src/bin/check_kube_spread /bin/
# Numeric, so that Kubernetes can verify runAsNonRoot without reading
# /etc/passwd.
USER 65532:65532
EXPOSE 10217
ENTRYPOINT ["/bin/kube-spread-exporter"]
