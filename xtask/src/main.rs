//! The project's front door: `cargo xtask setup | build | run | test | image | engine | bench | vm-test`.
//!
//! The eBPF side needs a compiler with a `core` for `bpfel-unknown-none` and
//! a `bpf-linker` built against the same LLVM major. On Debian the proven
//! route (the shared toolchain notes) is Debian's `rustc-web` with its prebuilt
//! bpf `core` plus `bpf-linker` built against `llvm-NN-dev`; `setup` installs
//! exactly that, idempotently, from package registries only, and every other
//! command calls it when something is missing.

mod bench;
mod deploy_check;
mod engine;
mod eql_qa;
mod image;
mod lint;
mod setup;
mod storm;
mod test_deps;
mod vm;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run and test the sensor")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install or check the eBPF toolchain (Debian packages, bpf-linker).
    Setup,
    /// Build the eBPF object, then the release sensor with it embedded.
    Build,
    /// Build, then run the sensor as root: `cargo xtask run -- <sensor args>`.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Enforce the lints: rustfmt, and clippy with warnings denied over the
    /// host crates and the kernel programs.
    Lint,
    /// Lint, build, install test dependencies, and run every unit and
    /// end-to-end test.
    Test {
        /// Extra arguments passed to `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Start containerd and dockerd if they are not running and import the
    /// test image (what `test` does before the end-to-end tests).
    Engine,
    /// Build the container image from the Dockerfile with a local docker
    /// (local stand-ins for the base images; the host-built binary unless
    /// --from-source).
    Image(image::ImageArgs),
    /// Overhead benchmark (as root): exec storms bare, with the sensor,
    /// bpftrace and auditd.
    Bench(bench::BenchArgs),
    /// Boot other kernels under qemu with each cgroup layout and run the
    /// end-to-end core inside (docs/vm-test.md).
    VmTest(vm::VmTestArgs),
    /// Run Elasticsearch's EQL QA specs (its `qa/common/src/main/resources`
    /// directory, not shipped here) through `sensor replay --query`.
    EqlQa(eql_qa::EqlQaArgs),
    /// Inside a vm-test VM only: the guest side of `vm-test`.
    #[command(hide = true)]
    VmGuest,
    /// Inside `bench --file-storm-only` only: the storm's driver process
    /// (started after the sensor, like any workload).
    #[command(hide = true)]
    FileStormDriver { dir: PathBuf, files: u64 },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Setup => setup::ensure(true).map(|_| ()),
        Cmd::Build => build().map(|_| ()),
        Cmd::Lint => lint::run(),
        Cmd::Run { args } => run(&args),
        Cmd::Test { args } => test(&args),
        Cmd::Engine => engine::ensure().map(|e| println!("{}", e.test_image)),
        Cmd::Image(args) => image::run(&args),
        Cmd::Bench(args) => bench::run(&args),
        Cmd::VmTest(args) => vm::run(&args, true),
        Cmd::VmGuest => vm::guest::run(),
        Cmd::EqlQa(args) => eql_qa::run(&args),
        Cmd::FileStormDriver { dir, files } => bench::file_storm_driver(&dir, files),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Runs a command, failing with its full command line when it fails.
pub fn run_cmd(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

pub fn ebpf_object_path() -> PathBuf {
    workspace_root().join("target/bpf/bpfel-unknown-none/release/sensor-ebpf")
}

pub fn sensor_binary_path() -> PathBuf {
    workspace_root().join("target/release/sensor")
}

/// Builds the eBPF object with the toolchain `setup` found, then the
/// release userspace binary with the object embedded.
pub(crate) fn build() -> Result<PathBuf> {
    let tools = setup::ensure(false)?;
    let root = workspace_root();
    let start = std::time::Instant::now();
    let mut ebpf = Command::new(cargo());
    ebpf.current_dir(&root)
        .args([
            "build",
            "-p",
            "sensor-ebpf",
            "--bins",
            "--release",
            "--target",
            "bpfel-unknown-none",
        ])
        .env("RUSTC", &tools.bpf_rustc)
        // aya-ebpf needs `asm_experimental_arch`; scope the bootstrap to it
        // (RUSTC_BOOTSTRAP=1 would make aya-build switch to build-std).
        .env("RUSTC_BOOTSTRAP", "aya_ebpf")
        .env("CARGO_TARGET_DIR", root.join("target/bpf"))
        .env("CARGO_TARGET_BPFEL_UNKNOWN_NONE_LINKER", &tools.bpf_linker)
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WRAPPER");
    run_cmd(&mut ebpf).context("building the eBPF programs")?;
    eprintln!(
        "xtask: eBPF object built in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    let start = std::time::Instant::now();
    let mut user = Command::new(cargo());
    user.current_dir(&root)
        .args(["build", "-p", "sensor", "--release", "--bin", "sensor"])
        .env("SENSOR_EBPF_OBJECT", ebpf_object_path());
    run_cmd(&mut user).context("building the sensor")?;
    eprintln!(
        "xtask: sensor built in {:.1}s",
        start.elapsed().as_secs_f64()
    );
    Ok(sensor_binary_path())
}

fn run(args: &[String]) -> Result<()> {
    let bin = build()?;
    let mut cmd = if setup::is_root() {
        Command::new(&bin)
    } else {
        eprintln!("xtask: the sensor needs root to load eBPF programs; running it with sudo");
        let mut c = Command::new("sudo");
        c.arg(&bin);
        c
    };
    cmd.args(args);
    run_cmd(&mut cmd)
}

/// Names Elastic's Linux and cross-platform rule catalogues for the tests
/// that read them (`sensor/tests/support`): a directory with `linux/` and
/// `cross-platform/`.
const CATALOGUE_VAR: &str = "SENSOR_ELASTIC_RULES";

/// The catalogue the tests read: `$SENSOR_ELASTIC_RULES` when set, else
/// `../shared/rules/elastic` when it is beside the workspace (as on CI).
fn elastic_catalogue(root: &Path) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(CATALOGUE_VAR) {
        return Some(PathBuf::from(dir));
    }
    let beside = root.join("../shared/rules/elastic");
    beside.join("linux").is_dir().then_some(beside)
}

fn test(args: &[String]) -> Result<()> {
    let bin = build()?;
    // The lints first: a run that would fail them fails in a minute, not
    // after the end-to-end tests.
    lint::run()?;
    test_deps::ensure()?;
    deploy_check::ensure_validator()?;
    // containerd + dockerd and the test image, for the tests that run real
    // docker and containerd containers (tests/src/engine.rs).
    let engine = engine::ensure()?;
    // The sensor image, run with the DaemonSet's privileges by
    // tests/tests/image.rs (the host-built binary: seconds, not the
    // in-image toolchain build).
    let image = image::build(&image::ImageArgs {
        from_source: false,
        tag: image::DEFAULT_TAG.to_owned(),
    })?;
    let root = workspace_root();
    let catalogue = elastic_catalogue(&root);
    let mut cmd = Command::new(cargo());
    cmd.current_dir(&root)
        .args([
            "test",
            "--workspace",
            "--exclude",
            "sensor-ebpf",
            "--release",
        ])
        .args(args)
        .env("SENSOR_BIN", &bin)
        .env("SENSOR_EBPF_OBJECT", ebpf_object_path())
        .env("SENSOR_TEST_IMAGE", &engine.test_image)
        .env("SENSOR_IMAGE", &image.tag);
    if let Some(dir) = &catalogue {
        cmd.env(CATALOGUE_VAR, dir);
    }
    run_cmd(&mut cmd)?;
    if catalogue.is_none() {
        eprintln!(
            "xtask: the Elastic catalogue tests did not run: set {CATALOGUE_VAR} to the rules/ \
             directory of a detection-rules checkout (git clone \
             https://github.com/elastic/detection-rules) to run them"
        );
    }
    // Other kernels and cgroup layouts under qemu: Debian 12's 6.1 on every
    // layout plus a boot without BPF LSM, and Debian 11's 5.10 on
    // hybrid-v1-runtime (the full matrix: `vm-test`).
    // With CI=true a VM that cannot boot fails the run.
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    vm::run(
        &vm::VmTestArgs {
            ci: true,
            sensor: Some(bin),
            timeout: 300,
            ..vm::VmTestArgs::default()
        },
        ci,
    )
}
