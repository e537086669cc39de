# The sensor image: the release `sensor` binary with its eBPF programs
# embedded, built with the project's own recipe (`cargo xtask build`, see
# xtask/src/setup.rs and shared docs toolchain.md), on Debian 12 like the
# nodes it runs on.
#
#   DOCKER_BUILDKIT=1 docker build -t sensor .
#
# Run it as deploy/kubernetes/base/daemonset.yaml does (uid 0, only its
# capabilities, hostPID, the host's tracefs, BTF, cgroup tree, securityfs
# and machine-id read-only): see the README's deploy section.
# `cargo xtask image` builds it here, where no registry can be reached, with
# local stand-ins for both bases (xtask/src/image.rs) and the binary it
# already built; tests/tests/image.rs runs it with the DaemonSet's exact
# privileges.
#
# BuildKit (DOCKER_BUILDKIT=1, the default since Docker 23) is required: it
# builds only the stage SENSOR_FROM selects, and the cache mounts below.
# No `# syntax=` line: it would make BuildKit pull a frontend image; the
# built-in frontend has everything used here.
#
# Pin both base images by digest in the release pipeline
# (`--build-arg BUILDER_BASE=debian:bookworm@sha256:...`); tags are kept
# here for readability.

# Where the binary comes from: `source` (the full build below, the
# release path) or `prebuilt` (the binary `cargo xtask build` made on a
# Debian 12 host, copied from target/release/sensor: same recipe, same
# glibc; what CI uses, as the in-image build takes many minutes).
ARG SENSOR_FROM=source
ARG BUILDER_BASE=debian:bookworm
# hadolint ignore=DL3007
ARG RUNTIME_BASE=gcr.io/distroless/cc-debian12:latest

########################################################################
# sensor-source: Debian's own Rust toolchain, no rustup.
########################################################################
FROM ${BUILDER_BASE} AS sensor-source

# Must equal the LLVM major that Debian's rustc-web was built with
# (`rustc -vV`); `cargo xtask build` re-checks this and rebuilds bpf-linker
# against the right llvm-NN-dev if Debian has moved on, so a stale value only
# costs build time, never a wrong binary.
ARG LLVM_MAJOR=22
# Same as BPF_LINKER_VERSION in xtask/src/setup.rs (tests/tests/deploy_manifests.rs checks).
ARG BPF_LINKER_VERSION=0.13.0

ENV DEBIAN_FRONTEND=noninteractive \
    CARGO_HOME=/root/.cargo \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# rustc-web / cargo-web (1.96, LLVM 22) and libstd-rust-web-dev-bpf (a
# prebuilt `core` for bpfel-unknown-none, so no -Z build-std) come from
# bookworm-security, which the debian:bookworm image already lists.
# cargo-web pulls in gcc and binutils for the host link; ca-certificates is
# for crates.io over HTTPS; llvm-NN-dev is what bpf-linker links against.
# Versions are not pinned: Debian supersedes security builds, and the xtask
# checks the one property that matters (the LLVM majors agree).
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      rustc-web \
      cargo-web \
      libstd-rust-web-dev-bpf \
      "llvm-${LLVM_MAJOR}-dev" \
 && rm -rf /var/lib/apt/lists/*

# bpf-linker in its own layer: it changes far less often than the sources.
# LLVM_PREFIX because Debian ships only llvm-config-NN, not llvm-config.
RUN --mount=type=cache,target=/root/.cargo/registry \
    LLVM_PREFIX="/usr/lib/llvm-${LLVM_MAJOR}" \
    cargo install "bpf-linker@${BPF_LINKER_VERSION}" --locked \
      --no-default-features --features "llvm-${LLVM_MAJOR}"

WORKDIR /src
COPY . .

# `cargo fetch --locked` fails if Cargo.lock would change, so the build below
# uses exactly the committed dependency versions. `cargo xtask build` then
# builds the eBPF object with Debian's rustc (RUSTC_BOOTSTRAP scoped to
# aya_ebpf) and the release sensor with the object embedded, exactly as on
# a developer machine. The target dir is a cache mount, so copy the binary out.
RUN --mount=type=cache,target=/root/.cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo fetch --locked \
 && cargo xtask build \
 && install -D -m 0755 target/release/sensor /out/sensor \
 && /out/sensor --version

########################################################################
# sensor-prebuilt: the host's `cargo xtask build` output.
########################################################################
FROM scratch AS sensor-prebuilt
COPY target/release/sensor /out/sensor

# A stage of this file, not an image: DL3006 does not apply.
# hadolint ignore=DL3006
FROM sensor-${SENSOR_FROM} AS sensor

########################################################################
# Runtime: glibc + libgcc only (the binary links libc, libm, libgcc_s).
# distroless/cc-debian12 has the same glibc as the builder, no shell and no
# package manager.
########################################################################
FROM ${RUNTIME_BASE} AS runtime

LABEL org.opencontainers.image.title="sensor" \
      org.opencontainers.image.description="eBPF Linux host security sensor with native Elastic EQL rules" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY --from=sensor /out/sensor /usr/local/bin/sensor

# Metrics, /healthz and /readyz when run with --metrics-addr 0.0.0.0:9100.
EXPOSE 9100

# Runs as uid 0 on purpose, with the capabilities cut down by the runtime
# (deploy/kubernetes/base/daemonset.yaml): Kubernetes has no ambient
# capabilities, so capabilities added to a non-root container never reach
# its effective set and the sensor could not load its programs. The binary
# itself needs no root uid: under systemd it runs with
# AmbientCapabilities only (deploy/systemd/sensor.service).
ENTRYPOINT ["/usr/local/bin/sensor"]
# Elastic's Defend-for-Containers rules, compiled into the binary; the
# DaemonSet adds the site's rules from the sensor-rules ConfigMap.
CMD ["run", "--rules", "builtin:d4c"]
